"""What the GIB complexity is made of: an exact split into information and synergy share.

With the interaction information of each feature with the rest about Q,
``II_i = I(X;Q) - I(X^{-i};Q) - I(X^i;Q)``, Eq. 5's complexity is, exactly,

    C = (1 / (2 beta N)) sum_i [I(X^{-i};Q) + I(X^i;Q)] = (1 / (2 beta)) I(X;Q) (1 - s)

with the **synergy share** ``s = mean_i II_i / I(X;Q)`` (``s = 0`` when ``I(X;Q) = 0``). The
complexity is half the information the features carry about Q, discounted by how much of it is
synergistic. A change of C between two measurements (same ``beta``) then splits exactly:

    Δ ln C = Δ ln I(X;Q) + Δ ln(1 - s)

so each part's share of a change says whether the features lost information about Q (or Q lost
entropy: a saturating softmax) or the way they combine changed.

The **total effect** of feature ``i`` is ``I(X;Q) - I(X^{-i};Q) = I(X^i;Q | X^{-i})`` (chain
rule): what feature ``i`` adds to the others. When Q is a function of X (``I(X;Q) = H(Q)``, e.g.
``q="z"``, ``pmi="none"`` on distinct rows) it is ``H(Q | X^{-i})``, and for a Boolean function
of uniform bits it is the influence of bit ``i``. Eq. 17 (``variant="sum_vs_whole"``) is
``C17 = (1/beta) sum_i I(X^i;Q) = (N/beta) I(X;Q) (1 - s) - (1/beta) sum_i I(X^{-i};Q)``.

See ``docs/theory.md`` for the derivation and what it implies.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["ChangeSplit", "split_change", "synergy_split"]


def synergy_split(whole: Any, single: Any, complement: Any) -> tuple[Any, Any, Any]:
    """Interaction information, synergy share and total effect of one set of GIB terms.

    Works on numpy arrays (``whole`` a float) and torch tensors (``whole`` 0-d, no host
    synchronisation) alike.

    Parameters
    ----------
    whole : float or 0-d tensor
        ``I(X; Q)``.
    single, complement : array or tensor
        ``(N,)`` ``I(X^i; Q)`` and ``I(X^{-i}; Q)`` (the complement of a lone feature is empty:
        0).

    Returns
    -------
    interaction : array or tensor
        ``(N,)`` ``II_i`` (zeros for ``N = 1``: nothing to interact with).
    synergy_share : float or 0-d tensor
        ``mean_i II_i / I(X;Q)``, 0 where ``I(X;Q) <= 0``.
    total_effect : array or tensor
        ``(N,)`` ``I(X;Q) - I(X^{-i};Q)``.
    """
    n_feat = single.shape[-1]
    interaction = whole - complement - single if n_feat > 1 else 0 * single
    positive = whole > 0
    denominator = whole * positive + (1 - 1 * positive)  # 1 where I(X;Q) <= 0
    share = positive * interaction.mean() / denominator
    return interaction, share, whole - complement


@dataclass(frozen=True)
class ChangeSplit:
    """The exact split of a change of the complexity between two measurements.

    Attributes
    ----------
    complexity : tuple of float
        ``(C_from, C_to)`` in bits.
    information : tuple of float
        ``(I_from, I_to)``: ``I(X; Q)`` in bits.
    synergy_share : tuple of float
        ``(s_from, s_to)``.
    log_ratio : float
        ``Δ ln C = ln(C_to / C_from)``.
    information_part, synergy_part : float
        ``Δ ln I(X;Q)`` and ``Δ ln(1 - s)``; they add up to ``log_ratio``.
    information_fraction, synergy_fraction : float
        Each part's signed fraction of ``log_ratio`` (adding to 1; NaN when C did not change).
    """

    complexity: tuple[float, float]
    information: tuple[float, float]
    synergy_share: tuple[float, float]
    log_ratio: float
    information_part: float
    synergy_part: float
    information_fraction: float
    synergy_fraction: float

    def sentence(self) -> str:
        """One line, e.g. ``complexity 2.26 → 1.24 bits: 97 % from I(X;Q), 3 % from s``."""
        c0, c1 = self.complexity
        i0, i1 = self.information
        s0, s1 = self.synergy_share
        head = f"complexity {c0:.3g} → {c1:.3g} bits"
        if not math.isfinite(self.information_fraction):
            return f"{head}: unchanged"
        return (
            f"{head}: {100 * self.information_fraction:.0f} % from I(X;Q) "
            f"({i0:.3g} → {i1:.3g} bits), {100 * self.synergy_fraction:.0f} % from the synergy "
            f"share ({s0:.3f} → {s1:.3f})"
        )

    def as_dict(self) -> dict[str, Any]:
        """Plain dictionary."""
        return asdict(self)


def split_change(
    complexity: Sequence[float], information: Sequence[float], synergy_share: Sequence[float]
) -> ChangeSplit:
    """Split the change of Eq. 5's complexity between the first and last points, exactly.

    ``ln C = ln(I(X;Q) / (2 beta)) + ln(1 - s)``, so (``beta`` fixed)
    ``Δ ln C = Δ ln I(X;Q) + Δ ln(1 - s)``.

    Parameters
    ----------
    complexity, information, synergy_share : sequence of float
        ``C``, ``I(X;Q)`` and ``s`` at two or more points in time order; the first and last are
        compared. Each of ``C``, ``I(X;Q)`` and ``1 - s`` must be positive at both, and ``C``
        must be ``I(X;Q) (1 - s) / (2 beta)`` with one ``beta`` (Eq. 5): else ``ValueError``.

    Returns
    -------
    ChangeSplit

    Examples
    --------
    >>> from gibloss.split import split_change
    >>> # I(X;Q) halved and the synergy share rose from 0.1 to 0.19: C = ½ I (1 - s)
    >>> s = split_change([0.99, 0.4455], [2.2, 1.1], [0.1, 0.19])
    >>> round(s.information_fraction, 3), round(s.synergy_fraction, 3)
    (0.868, 0.132)
    """
    c = [float(v) for v in complexity]
    i = [float(v) for v in information]
    s = [float(v) for v in synergy_share]
    if not (len(c) == len(i) == len(s) >= 2):
        raise ValueError(
            "`complexity`, `information` and `synergy_share` need the same length, at least 2, "
            f"got {len(c)}, {len(i)} and {len(s)}"
        )
    ends = ((c[0], c[-1], "complexity"), (i[0], i[-1], "information"))
    for a, b, name in ends:
        if not (a > 0 and b > 0 and math.isfinite(a) and math.isfinite(b)):
            raise ValueError(f"`{name}` must be positive and finite at both ends, got {a}, {b}")
    if not (s[0] < 1 and s[-1] < 1):
        raise ValueError(f"`synergy_share` must be below 1 at both ends, got {s[0]}, {s[-1]}")
    log_ratio = math.log(c[-1] / c[0])
    info = math.log(i[-1] / i[0])
    syn = math.log((1 - s[-1]) / (1 - s[0]))
    if abs(info + syn - log_ratio) > 1e-6 * max(1.0, abs(log_ratio)):
        raise ValueError(
            "the complexities are not I(X;Q) (1 - s) / (2 beta) with one beta at both ends "
            f"(Δ ln C = {log_ratio:.6g}, but Δ ln I + Δ ln(1 - s) = {info + syn:.6g}): the "
            "split holds for Eq. 5 at a fixed beta only"
        )
    if abs(log_ratio) < 1e-12:
        fi = fs = float("nan")
    else:
        fi, fs = info / log_ratio, syn / log_ratio
    return ChangeSplit(
        complexity=(c[0], c[-1]),
        information=(i[0], i[-1]),
        synergy_share=(s[0], s[-1]),
        log_ratio=log_ratio,
        information_part=info,
        synergy_part=syn,
        information_fraction=fi,
        synergy_fraction=fs,
    )

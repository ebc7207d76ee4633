"""Probes where rules differ, and the synergy share of a prediction on them.

Two models that agree on the rows a loss sees have the same GIB terms there: on a training set
where a true rule and a shortcut coincide, no term can prefer one. Only on inputs where the
rules disagree can the way a prediction combines features be measured or trained. This module
gives the three pieces for that:

* :func:`independent_probe`: a probe built from a batch by resampling each column on its own
  (the product of the marginals), so that ``I(X^i; X^{-i}) = 0`` and each feature's interaction
  information ``II_i = I(X^i; X^{-i} | Q) >= 0``: on such a probe the synergy share lies in
  ``[0, 1]``;
* :func:`synergy_map`: the per-feature synergy map of any prediction on a probe (``II_i``, the
  total effect ``I(X^i; Q | X^{-i})`` and the single term ``I(X^i; Q)``, each over
  ``I(X; Q)``), with bootstrap intervals, computed by :func:`gibloss.gib` with Q the prediction
  alone (no labels);
* :class:`SynergyShareLoss`: the synergy share ``s = mean_i II_i / I(X; Q)`` of the soft
  prediction ``Q ~ softmax(z / temperature)`` on probe inputs, differentiable, by the same core
  as the exact estimator (:func:`gibloss.functional.gib_terms`; with hard memberships it equals
  the exact value). Its signed weight rewards interactions (positive) or additive use of
  features (negative).

See ``docs/synergy-probes.md`` and ``recipes/boolean_lab.py``, which asks whether this term
does something a confidence penalty cannot.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ._validation import as_array
from .bootstrap import check_n_boot, percentile_interval
from .functional import ESTIMATORS, GIBTerms, check_training, gib_terms, loss_dtype
from .measures import gib
from .records import jsonable
from .spec import GIBSpec

__all__ = ["SynergyMap", "SynergyShareLoss", "independent_probe", "synergy_map"]


def independent_probe(x: Any, n: int | None = None, *, seed: int = 0) -> Any:
    """Rows drawn from the product of the columns' marginals of ``x``.

    Each column is resampled with replacement on its own, so the probe keeps every feature's
    distribution and breaks every dependence between features: ``I(X^i; X^{-i}) = 0`` on it
    (in expectation; exactly for the empirical product measure as ``n`` grows).

    Parameters
    ----------
    x : numpy.ndarray or torch.Tensor
        ``(m, N)`` rows (a data batch).
    n : int, optional
        Rows of the probe (default ``m``).
    seed : int
        Seed of the resampling.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        ``(n, N)``, of ``x``'s type (and device and dtype for a tensor).

    Examples
    --------
    >>> import numpy as np
    >>> from gibloss.probes import independent_probe
    >>> x = np.repeat(np.arange(4)[:, None], 2, axis=1)      # two identical columns
    >>> p = independent_probe(x, 1000)
    >>> bool(np.mean(p[:, 0] == p[:, 1]) < 0.5)              # no longer identical
    True
    """
    is_tensor = isinstance(x, torch.Tensor)
    rows = x.detach() if is_tensor else as_array(x, "x")
    if rows.ndim != 2 or rows.shape[0] < 1 or rows.shape[1] < 1:
        raise ValueError(f"`x` must have shape (m, N) with m, N >= 1, got {tuple(rows.shape)}")
    m, n_feat = rows.shape
    n = m if n is None else n
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ValueError(f"`n` must be a positive integer, got {n!r}")
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, m, (n, n_feat), generator=gen)
    if is_tensor:
        idx = idx.to(rows.device)
        return torch.gather(rows, 0, idx)
    return np.take_along_axis(rows, idx.numpy(), axis=0)


@dataclass
class SynergyMap:
    """Per-feature synergy of a prediction on a probe (bits and shares of ``I(X; Q)``).

    Attributes
    ----------
    whole : float
        ``I(X; Q)`` with Q the prediction alone.
    synergy_share : float
        ``s = mean_i II_i / I(X; Q)``.
    interaction, total_effect, single : numpy.ndarray
        ``(N,)`` ``II_i / I(X;Q)``, ``I(X^i; Q | X^{-i}) / I(X;Q)`` and ``I(X^i; Q) / I(X;Q)``
        (``interaction = total_effect - single``).
    intervals : dict
        ``level`` percentile bootstrap intervals (rows of the probe resampled) of
        ``synergy_share`` (``[low, high]``) and of the three maps (``[lows, highs]``); empty
        without ``n_boot``.
    """

    whole: float
    synergy_share: float
    interaction: np.ndarray
    total_effect: np.ndarray
    single: np.ndarray
    intervals: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dictionary."""
        return jsonable(asdict(self))


def _shares(res: Any) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    whole = float(res.whole)
    scale = 1.0 / whole if whole > 0 else 0.0
    return (
        float(res.synergy_share),
        np.asarray(res.interaction) * scale,
        np.asarray(res.total_effect) * scale,
        np.asarray(res.single) * scale,
    )


def synergy_map(
    x: Any,
    z: Any,
    *,
    estimator: str = "binning",
    n_boot: int = 0,
    level: float = 0.95,
    random_state: int = 0,
    **options: Any,
) -> SynergyMap:
    """The synergy map of a prediction ``z`` on probe inputs ``x``.

    Q is the prediction alone (``gib(x, z, None, q="z", pmi="none")``): integer ``z`` are taken
    as coded predictions, logits ``(n, k)`` by their argmax (the default ``z_code`` of a
    continuous estimator; binning codes probabilities unless ``z_code="argmax"`` is passed).
    On an :func:`independent_probe` every ``II_i`` is ``I(X^i; X^{-i} | Q) >= 0``.

    Parameters
    ----------
    x : array-like or torch.Tensor
        ``(n, N)`` probe inputs.
    z : array-like or torch.Tensor
        The prediction on them: ``(n,)`` codes or ``(n, k)`` logits.
    estimator : str
        Exact estimator of :func:`gibloss.gib`.
    n_boot : int
        Bootstrap resamples of the probe's rows (0: none).
    level : float
        Coverage of the percentile intervals.
    random_state : int
        Seed of the bootstrap.
    **options
        Other keywords of :func:`gibloss.gib` (``bins``, ``z_code``, ...).

    Returns
    -------
    SynergyMap
    """
    check_n_boot(n_boot, level)
    xa, za = as_array(x, "x"), as_array(z, "z")
    opts = {"estimator": estimator, "q": "z", "pmi": "none", **options}
    res = gib(xa, za, None, **opts)
    share, inter, total, single = _shares(res)
    intervals: dict[str, Any] = {}
    if n_boot:
        rng = np.random.default_rng(random_state)
        boots = []
        for _ in range(n_boot):
            idx = rng.integers(0, xa.shape[0], xa.shape[0])
            boots.append(_shares(gib(xa[idx], za[idx], None, **opts)))
        for k, name in enumerate(("synergy_share", "interaction", "total_effect", "single")):
            intervals[name] = percentile_interval([b[k] for b in boots], level)
        intervals["level"] = level
        intervals["n_boot"] = n_boot
    return SynergyMap(float(res.whole), share, inter, total, single, intervals)


class SynergyShareLoss(nn.Module):
    """The signed synergy share of a prediction on probe inputs, as a loss term.

    ``forward(x_probe, outputs)`` returns ``-weight * s``, with ``s = mean_i II_i / I(X; Q)``
    the synergy share of the soft prediction ``Q ~ softmax(outputs / temperature)`` on the probe
    (no labels: Q is the prediction alone, unweighted). Minimising it with a **positive** weight
    pushes the prediction towards interactions between features (``s`` up); a **negative** weight
    towards additive use of features (``s`` down). The terms come from
    :func:`gibloss.functional.gib_terms` (``q="z"``, ``pmi="none"``), the core of the exact
    estimator: with hard memberships ``s`` equals ``gib(x, argmax, None, q="z",
    pmi="none").synergy_share``. The gradient flows through the outputs only.

    Use it on a probe where candidate rules disagree (e.g. an :func:`independent_probe` of the
    training inputs): on the training rows, where a true rule and a shortcut coincide, every
    term is the same for both.

    Parameters
    ----------
    weight : float, default 1.0
        Signed multiplier (finite).
    estimator : {"binning", "gaussian_copula"}, default "binning"
        The surrogate; binning is exact for discrete (e.g. binary) probe inputs.
    temperature : float, default 1.0
        Softness of Q.
    bins : int, optional
        Bins per feature (binning; default 30).
    validate : bool, default True
        Check finiteness at every call.

    Examples
    --------
    >>> import torch
    >>> from gibloss.probes import SynergyShareLoss
    >>> _ = torch.manual_seed(0)
    >>> x = torch.randint(0, 2, (256, 4)).double()
    >>> model = torch.nn.Linear(4, 2).double()
    >>> term = SynergyShareLoss(weight=0.5)
    >>> loss = term(x, model(x))
    >>> loss.backward()
    >>> 0.0 <= float(term.last_terms.synergy_share) <= 1.0
    True
    """

    def __init__(
        self,
        weight: float = 1.0,
        *,
        estimator: str = "binning",
        temperature: float = 1.0,
        bins: int | None = None,
        validate: bool = True,
    ) -> None:
        super().__init__()
        if not isinstance(weight, (int, float)) or isinstance(weight, bool) or not math.isfinite(
            weight
        ):
            raise ValueError(f"`weight` must be a finite number, got {weight!r}")
        if estimator not in ESTIMATORS:
            raise ValueError(f"`estimator` must be one of {ESTIMATORS}, got {estimator!r}")
        # Q is the prediction alone, unweighted: the synergy share of the function x -> z
        self.spec = GIBSpec(
            estimator,
            temperature=temperature,
            bins=bins,
            q="z",
            pmi="none",
            task="classification",
        )
        check_training(estimator=estimator, validate=validate)
        self.weight = float(weight)
        self.estimator = estimator
        self.temperature = self.spec.temperature
        self.bins = self.spec.bins
        self.validate = validate
        self.last_terms: GIBTerms | None = None

    def terms(self, x: Any, outputs: torch.Tensor) -> GIBTerms:
        """The differentiable GIB terms of the prediction alone on the probe ``x``."""
        labels = torch.zeros(outputs.shape[0], dtype=torch.long, device=outputs.device)
        return gib_terms(
            x, outputs, labels, self.spec, null=False, validate=self.validate
        )

    def forward(self, x: Any, outputs: torch.Tensor) -> torch.Tensor:
        """``-weight * synergy_share`` (a positive weight rewards synergy)."""
        terms = self.terms(x, outputs)
        self.last_terms = terms.detach()
        return (-self.weight * terms.synergy_share).to(loss_dtype(outputs))

    def extra_repr(self) -> str:
        return (
            f"weight={self.weight}, estimator={self.estimator!r}, "
            f"temperature={self.temperature}, bins={self.bins}"
        )

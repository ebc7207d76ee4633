"""Fitting and compression phases of an information-plane trajectory.

**Definition** (used by summaries, plots and recipes). For a trajectory of (complexity,
prediction) pairs ordered in time:

1. the *fitting point* ``t_fit`` is the first time the prediction has covered ``fit_fraction``
   (default 90 %) of its total rise ``prediction[-1] - prediction[0]``;
2. the *peak* is the largest complexity at or after ``t_fit`` (``t_peak``, ``c_peak``);
3. the *compression* is ``c_peak - complexity[-1]``, and its relative size is that drop divided
   by the complexity's range over the whole run;
4. a trajectory *compresses* when the relative drop, measured at the end of the run (so a dip that
   recovers does not count), is at least ``threshold`` (default 0.1) **and** the drop is at least
   ``min_drop`` bits (default 0.05: smaller movements are within estimator noise, e.g. a term
   saturated at ``log2 n`` that wobbles in its third decimal). ``start`` is the time (epoch or
   step) of the peak, where compression begins.

A run whose prediction never rises (``prediction[-1] <= prediction[0]``) has no fitting point; its
whole trajectory is then treated as after-fit.

**Split** of the change, when ``I(X;Q)`` (``whole``) and the synergy share are given (Eq. 5):
``C = I(X;Q) (1 - s) / (2 beta)`` exactly, so ``Δ ln C = Δ ln I(X;Q) + Δ ln(1 - s)``
(:mod:`gibloss.split`). ``split`` divides the change from the first point to the end,
``drop_split`` a detected drop from its peak to the end: a drop carried by ``I(X;Q)`` is the
features telling less about Q (or Q losing entropy: a saturating softmax, see the cause below); a
drop carried by ``1 - s`` is the features' information becoming more synergistic.

**Cause** of a detected drop, when the output-side diagnostics are given. A complexity computed
on binned probabilities falls when the softmax saturates into fewer probability bins, without any
change in what the features tell about the decisions. Between the peak and the end:

* ``"saturation"``: the weighted entropy of Q (``h_q``) fell by at least half the complexity's
  drop, or the mean max-p (``max_p``) rose by at least 0.02 while moving against the complexity
  (correlation ≤ −0.8); and, if the argmax-coded complexity is given, it fell by less than half as
  much (the decisions stayed fixed);
* ``"compression"``: otherwise;
* ``None``: no drop was detected, or no diagnostic was given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .split import ChangeSplit, split_change

__all__ = ["CompressionSummary", "compression", "trajectory_compression"]


@dataclass
class CompressionSummary:
    """Result of :func:`compression` (times are in the units of ``times``)."""

    compressed: bool
    drop: float
    relative_drop: float
    start: float | None
    fit_time: float | None
    peak: float
    end: float
    first: float
    cause: str | None = None
    split: ChangeSplit | None = None
    drop_split: ChangeSplit | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain dictionary."""
        return asdict(self)


def compression(
    complexity: Sequence[float],
    prediction: Sequence[float],
    times: Sequence[float] | None = None,
    *,
    fit_fraction: float = 0.9,
    threshold: float = 0.1,
    min_drop: float = 0.05,
    h_q: Sequence[float] | None = None,
    max_p: Sequence[float] | None = None,
    argmax_complexity: Sequence[float] | None = None,
    whole: Sequence[float] | None = None,
    synergy_share: Sequence[float] | None = None,
) -> CompressionSummary:
    """Detect a compression phase in one trajectory (see the module docstring for the definition).

    Parameters
    ----------
    complexity, prediction : sequence of float
        The trajectory, in time order.
    times : sequence of float, optional
        Epochs or steps; default ``0, 1, 2, ...``.
    fit_fraction : float
        Fraction of the prediction's rise that marks the end of fitting.
    threshold : float
        Minimum relative drop (fraction of the complexity's range) that counts as compression.
    min_drop : float
        Minimum absolute drop in the complexity's units (bits) that counts as compression.
    h_q, max_p, argmax_complexity : sequence of float, optional
        Output-side diagnostics at the same times (the weighted entropy of Q, the mean max-p,
        the complexity with Z coded by its argmax); with any of them a detected drop gets a
        ``cause`` (see the module docstring).
    whole, synergy_share : sequence of float, optional
        ``I(X;Q)`` and the synergy share at the same times (Eq. 5): with both, ``split`` and
        ``drop_split`` give the exact split of the change (see the module docstring).

    Returns
    -------
    CompressionSummary

    Examples
    --------
    >>> from gibloss.phases import compression
    >>> c = [0.1, 0.5, 0.9, 1.0, 0.8, 0.6, 0.5]      # rises, then falls
    >>> p = [0.0, 0.6, 0.9, 0.95, 0.97, 0.98, 0.99]
    >>> s = compression(c, p)
    >>> s.compressed, s.start, round(s.relative_drop, 2)
    (True, 3.0, 0.56)
    """
    c = np.asarray(complexity, dtype=float)
    p = np.asarray(prediction, dtype=float)
    if c.ndim != 1 or c.shape != p.shape:
        raise ValueError(
            "`complexity` and `prediction` must be 1-D of the same length, "
            f"got {c.shape} and {p.shape}"
        )
    if c.size < 2:
        raise ValueError(f"a trajectory needs at least 2 points, got {c.size}")
    if not (np.all(np.isfinite(c)) and np.all(np.isfinite(p))):
        raise ValueError("`complexity` and `prediction` must be finite")
    t = np.arange(c.size, dtype=float) if times is None else np.asarray(times, dtype=float)
    if t.shape != c.shape:
        raise ValueError(f"`times` must have the trajectory's length {c.size}, got {t.shape}")
    if not 0 < fit_fraction <= 1:
        raise ValueError(f"`fit_fraction` must lie in (0, 1], got {fit_fraction!r}")
    rise = p[-1] - p[0]
    if rise > 0:
        i_fit = int(np.argmax(p >= p[0] + fit_fraction * rise))
        fit_time: float | None = float(t[i_fit])
    else:
        i_fit, fit_time = 0, None
    i_peak = i_fit + int(np.argmax(c[i_fit:]))
    c_peak, c_end = float(c[i_peak]), float(c[-1])
    span = float(c.max() - c.min())
    drop = c_peak - c_end
    rel = drop / span if span > 0 else 0.0
    compressed = rel >= threshold and drop >= min_drop and i_peak < c.size - 1
    cause = None
    if compressed and (h_q is not None or max_p is not None):
        cause = _cause(c, i_peak, drop, h_q, max_p, argmax_complexity)
    split = drop_split = None
    if whole is not None and synergy_share is not None:
        w = _series(whole, c.size, "whole")
        sh = _series(synergy_share, c.size, "synergy_share")
        split = _split_or_none(c, w, sh, 0)
        if compressed:
            drop_split = _split_or_none(c, w, sh, i_peak)
    return CompressionSummary(
        split=split,
        drop_split=drop_split,
        compressed=bool(compressed),
        drop=drop,
        relative_drop=rel,
        start=float(t[i_peak]) if compressed else None,
        fit_time=fit_time,
        peak=c_peak,
        end=c_end,
        first=float(c[0]),
        cause=cause,
    )


def _split_or_none(
    c: np.ndarray, whole: np.ndarray, share: np.ndarray, start: int
) -> ChangeSplit | None:
    """The split from ``start`` to the end; None where a log is undefined (a zero term)."""
    ends = [start, c.size - 1]
    if min(c[ends].min(), whole[ends].min()) <= 0 or share[ends].max() >= 1:
        return None
    try:
        return split_change(c[ends], whole[ends], share[ends])
    except ValueError:  # not Eq. 5 at one beta (e.g. beta changed during the run): no split
        return None


def _series(values: Sequence[float], n: int, name: str) -> np.ndarray:
    a = np.asarray(values, dtype=float)
    if a.shape != (n,) or not np.all(np.isfinite(a)):
        raise ValueError(f"`{name}` must be {n} finite values (one per point), got {a.shape}")
    return a


def _cause(
    c: np.ndarray,
    i_peak: int,
    drop: float,
    h_q: Sequence[float] | None,
    max_p: Sequence[float] | None,
    argmax_complexity: Sequence[float] | None,
) -> str:
    """``"saturation"`` or ``"compression"`` for a detected drop (module docstring)."""
    n = c.size
    window = slice(i_peak, n)
    confident = False
    if h_q is not None:
        h = _series(h_q, n, "h_q")
        confident |= bool(h[i_peak] - h[-1] >= 0.5 * drop)
    if max_p is not None:
        m = _series(max_p, n, "max_p")[window]
        rose = m[-1] - m[0] >= 0.02
        cw = c[window]
        if rose and cw.std() > 0 and m.std() > 0:
            confident |= bool(np.corrcoef(cw, m)[0, 1] <= -0.8)
    if confident and argmax_complexity is not None:
        a = _series(argmax_complexity, n, "argmax_complexity")
        confident = bool(a[i_peak] - a[-1] < 0.5 * drop)
    return "saturation" if confident else "compression"


def trajectory_compression(trajectory: dict[str, Any], **kwargs: Any) -> CompressionSummary:
    """:func:`compression` of one run of :func:`gibloss.records.trajectories`, with its diagnostics.

    The trajectory's ``h_q``, ``max_p`` and ``argmax_complexity`` are passed where recorded, so
    a detected drop gets its cause; ``kwargs`` go to :func:`compression` (``threshold``...).
    """
    return compression(
        trajectory["complexity"],
        trajectory["prediction"],
        trajectory["time"],
        h_q=trajectory.get("h_q"),
        max_p=trajectory.get("max_p"),
        argmax_complexity=trajectory.get("argmax_complexity"),
        whole=trajectory.get("whole"),
        synergy_share=trajectory.get("synergy_share"),
        **kwargs,
    )

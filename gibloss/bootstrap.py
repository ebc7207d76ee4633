"""Bootstrap intervals of information estimates.

A resample draws ``n`` rows with replacement; row ``j`` appears ``c_j`` times (multinomial counts).
Its estimate is the same estimator under the measure that gives row ``j`` the mass ``c_j / n``, so
the codes and partitions of the full sample are reused and all resamples of the binning estimator
are evaluated in one pass (:meth:`gibloss.estimators.Estimator.feature_terms_batch`).

For the GIB terms, Q's PMI weights are recomputed on each resample from its own contingency table
of (Z code, Y code) (:func:`gibloss.pmi.pmi_mass` with the counts as memberships); Q's codes, Z's
bins and the features' bins stay those of the full sample. A bias correction's null is held at its
full-sample value and subtracted from every resample.

The interval is the percentile interval of the resampled values. It describes the sampling
variability of the estimate, not its bias: a plug-in estimate that is biased upwards (see
:mod:`gibloss.bias`) has an interval around the biased value, and a resample, which repeats rows,
reads binned terms slightly lower than the full sample.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["bootstrap_counts", "check_n_boot", "percentile_interval"]


def check_n_boot(n_boot: int, level: float) -> None:
    """Validate ``n_boot`` (0 = off, else at least 2) and ``level`` (in (0, 1))."""
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 0:
        raise ValueError(f"`n_boot` must be a non-negative integer, got {n_boot!r}")
    if n_boot == 1:
        raise ValueError("`n_boot` must be 0 (no bootstrap) or at least 2, got 1")
    if not (isinstance(level, (int, float)) and 0.0 < level < 1.0):
        raise ValueError(f"`level` must lie in (0, 1), got {level!r}")


def bootstrap_counts(n: int, n_boot: int, random_state: int | None) -> np.ndarray:
    """``(n_boot, n)`` multinomial counts: how often each row appears in each resample."""
    rng = np.random.default_rng(random_state)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot)


def percentile_interval(values: Any, level: float) -> np.ndarray:
    """``[low, high]`` percentiles of ``values`` along axis 0 (``(2, ...)`` for array values)."""
    a = np.asarray(values, dtype=float)
    tail = 50.0 * (1.0 - level)
    return np.percentile(a, [tail, 100.0 - tail], axis=0)

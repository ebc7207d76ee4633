"""k-nearest-neighbour estimators: Kraskov–Stögbauer–Grassberger and Ross (2014).

* Continuous ``A`` and ``B``: KSG's first estimator (Kraskov et al., 2004) in the max-norm,
  ``I = psi(k) + psi(n) - < psi(n_a + 1) + psi(n_b + 1) >``.
* Continuous ``A`` and symbols ``C``: Ross (2014),
  ``I = psi(n) - < psi(n_c) > + psi(k) - < psi(m) >``, where the radius of row ``j`` is the
  distance to its ``k``-th neighbour of the same symbol and ``m_j`` counts the rows of any symbol
  strictly inside it (the row itself included), as in scikit-learn's ``mutual_info_classif``.
* Entropy of a continuous variable: Kozachenko–Leonenko in the max-norm.

Neighbour searches use scikit-learn's ``KDTree``. Columns are scaled to unit standard deviation
and, as scikit-learn does, a seeded noise of relative size 1e-10 breaks ties (kNN distances are
not defined for repeated rows; heavily tied data such as binary features are a poor fit for kNN
estimators: prefer binning there).

**How sample weights enter** (PMI-weighted Q). With weights, the Ross estimator averages its
per-row terms under the weights and estimates the weighted marginal density inside each radius
from the weights of the rows there:
``I_w = sum_j w_j [psi(k) - psi(n_c) + psi(n) - psi(m_j) - log(n M_j / m_j)]``, where ``M_j`` is
the weight inside the radius. This is consistent when the weights are a function of the symbol
(the PMI weights of Q with ``q="cell"``, the default): reweighting then changes the symbols' prior
and leaves each symbol's conditional density alone, which the per-symbol neighbours estimate from
the unweighted rows. With uniform weights it is exactly Ross's estimator. Weights that vary within
a symbol are still accepted, but the conditional densities are then those of the unweighted rows.
Continuous pairs and entropies take no weights (a ``ValueError`` says so).
"""

from __future__ import annotations

import numpy as np

from ._discrete import row_codes
from .base import Estimator, uniform_if_none


def _kdtree(points: np.ndarray):  # type: ignore[no-untyped-def]
    """A Chebyshev-metric ``sklearn.neighbors.KDTree`` (imported on first use)."""
    from sklearn.neighbors import KDTree

    return KDTree(points, metric="chebyshev")


def _digamma(v):  # type: ignore[no-untyped-def]
    """``scipy.special.digamma`` (imported on first use: ``import gibloss`` stays light)."""
    from scipy.special import digamma

    return digamma(v)


__all__ = ["KSGEstimator"]

_LN2 = np.log(2.0)


class KSGEstimator(Estimator):
    """kNN mutual information: KSG for continuous pairs, Ross (2014) with symbols.

    Parameters
    ----------
    k : int, default 3
        Neighbours (scikit-learn's default for ``mutual_info_classif``).
    noise : float, default 1e-10
        Relative size of the tie-breaking noise added to the scaled columns (0 disables it).
    random_state : int, optional
        Seed of that noise (default 0: estimates are deterministic).

    Examples
    --------
    >>> import numpy as np
    >>> from gibloss.estimators import KSGEstimator
    >>> rng = np.random.default_rng(0)
    >>> xy = rng.multivariate_normal([0, 0], [[1, 0.9], [0.9, 1]], size=2000)
    >>> truth = -0.5 * np.log2(1 - 0.9**2)
    >>> est = KSGEstimator().mutual_information(xy[:, :1], xy[:, 1:])
    >>> bool(abs(est - truth) < 0.05)
    True
    """

    name = "ksg"

    def __init__(self, k: int = 3, noise: float = 1e-10, random_state: int | None = 0) -> None:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"`k` must be a positive integer, got {k!r}")
        if not (isinstance(noise, (int, float)) and np.isfinite(noise) and noise >= 0):
            raise ValueError(f"`noise` must be a finite non-negative number, got {noise!r}")
        self.k = int(k)
        self.noise = float(noise)
        self.random_state = random_state

    # -- preparation ---------------------------------------------------------------------------

    def _prepare(self, a: np.ndarray) -> np.ndarray:
        """Unit-variance float columns (constant ones dropped) with seeded tie-breaking noise."""
        a = a.astype(np.float64)
        sd = a.std(axis=0)
        a = a[:, sd > 0] / sd[sd > 0]
        if self.noise and a.size:
            rng = np.random.default_rng(self.random_state)
            a = a + self.noise * np.maximum(1.0, np.abs(a).mean(axis=0)) * rng.standard_normal(
                a.shape
            )
        return a

    def _check_k(self, n: int) -> None:
        if n <= self.k:
            raise ValueError(f"KSGEstimator(k={self.k}) needs more than k rows, got {n}")

    @staticmethod
    def _uniform(weights: np.ndarray | None, n: int, what: str) -> None:
        if weights is not None and not np.allclose(weights, 1.0 / n, rtol=1e-9, atol=0.0):
            raise ValueError(
                f"KSGEstimator takes sample weights only with a discrete partner; {what} needs "
                "uniform weights (pass weights=None)"
            )

    # -- the estimators ------------------------------------------------------------------------

    def entropy(self, a: np.ndarray, weights: np.ndarray | None = None) -> float:
        """Kozachenko–Leonenko entropy (bits, max-norm) of continuous ``a``; plug-in of symbols."""
        if a.dtype.kind in "iu":
            return self._discrete_entropy(a, weights)
        n = a.shape[0]
        self._uniform(weights, n, "an entropy")
        self._check_k(n)
        z = self._prepare(a)
        if z.shape[1] == 0:
            return 0.0
        dist, _ = _kdtree(z).query(z, k=self.k + 1)
        eps = 2.0 * dist[:, -1]
        h = _digamma(n) - _digamma(self.k) + z.shape[1] * np.mean(np.log(eps))
        # back to the original columns' scale
        sd = a.astype(np.float64).std(axis=0)
        h += np.log(sd[sd > 0]).sum()
        return float(h / _LN2)

    def _mi_continuous(self, a: np.ndarray, b: np.ndarray, weights: np.ndarray | None) -> float:
        """KSG's first estimator for two continuous arrays (bits)."""
        n = a.shape[0]
        self._uniform(weights, n, "a continuous pair")
        self._check_k(n)
        za, zb = self._prepare(a), self._prepare(b)
        if za.shape[1] == 0 or zb.shape[1] == 0:
            return 0.0
        joint = np.hstack([za, zb])
        dist, _ = _kdtree(joint).query(joint, k=self.k + 1)
        radius = np.nextafter(dist[:, -1], 0.0)  # strictly inside the k-th neighbour's distance
        n_a = _kdtree(za).query_radius(za, radius, count_only=True)
        n_b = _kdtree(zb).query_radius(zb, radius, count_only=True)
        # the counts include the row itself: n_a + 1 in KSG's notation is n_a here
        mi = _digamma(self.k) + _digamma(n) - np.mean(_digamma(n_a) + _digamma(n_b))
        return float(max(mi, 0.0) / _LN2)

    def _mi_with_symbols(
        self, a: np.ndarray, codes: np.ndarray, weights: np.ndarray | None
    ) -> float:
        """Ross (2014) ``I(A; C)``, weighted as the module docstring says."""
        n = a.shape[0]
        w = uniform_if_none(n, weights)
        c, _ = row_codes(codes)
        z = self._prepare(a)
        if z.shape[1] == 0:
            return 0.0
        radius = np.zeros(n)
        n_c = np.zeros(n)
        k_used = np.zeros(n)
        keep = np.zeros(n, dtype=bool)
        for label in np.unique(c):
            rows = np.flatnonzero(c == label)
            if rows.size < 2:
                continue  # a symbol seen once has no neighbour of its own: left out, as in Ross
            k = min(self.k, rows.size - 1)
            dist, _ = _kdtree(z[rows]).query(z[rows], k=k + 1)
            radius[rows] = np.nextafter(dist[:, -1], 0.0)
            n_c[rows] = rows.size
            k_used[rows] = k
            keep[rows] = True
        if not keep.any():
            return 0.0
        tree = _kdtree(z[keep])
        inside = tree.query_radius(z[keep], radius[keep])
        m = np.array([len(i) for i in inside], dtype=float)
        n_kept = int(keep.sum())
        wk = w[keep]
        total = wk.sum()
        if total <= 0:
            return 0.0
        wk = wk / total
        mass = np.array([wk[i].sum() for i in inside])
        terms = (
            _digamma(n_kept)
            - _digamma(n_c[keep])
            + _digamma(k_used[keep])
            - _digamma(m)
            - np.log(n_kept * mass / m)
        )
        return float(max(np.dot(wk, terms), 0.0) / _LN2)

"""Gaussian-copula mutual information (Ince et al., 2017; the paper's appendix F.2)."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np
import torch

from ._discrete import row_codes
from ._gaussian import (
    CellMoments,
    fill_constant_columns,
    gaussian_entropies,
    single_thread,
    terms_from_moments,
)
from .base import Estimator, FeatureTerms, effective_size, uniform_if_none
from .binning import BinningEstimator

__all__ = ["GaussianCopulaEstimator", "copula_normalize", "copula_ranks"]

_LN2 = np.log(2.0)


def copula_ranks(a: torch.Tensor, host_sort: bool = False) -> torch.Tensor:
    """Standard-normal quantiles of each column's ranks, in torch (ties share the average rank).

    ``ndtri(rank / (n + 1))`` with ``rank = rankdata(a, method="average", axis=0)``: one sort of
    all columns at once, the tie groups found by cumulative max/min of their boundaries, no host
    synchronisation. Average ranks are half-integers in ``[1, n]``, so ``ndtri`` is evaluated
    once for each of their ``2n - 1`` possible values and looked up. The data side of every
    Gaussian-copula estimate, exact and differentiable (it carries no gradient: ranks are
    piecewise constant).

    Parameters
    ----------
    a : torch.Tensor
        ``(n, d)`` floating point, on any device.
    host_sort : bool
        Sort a CPU tensor with numpy's ``argsort`` (several times faster than ``torch.sort``
        on one thread; the exact estimators ask for it, the loss path stays in torch).

    Returns
    -------
    torch.Tensor
        ``(n, d)`` float64 on ``a``'s device; a constant column maps to zeros.
    """
    at = a.detach().T.to(torch.float64).contiguous()
    d, n = at.shape
    # ties get the average rank: their order within the sort does not matter
    half_ranks = torch.arange(2, 2 * n + 1, device=a.device, dtype=torch.float64) / 2.0
    table = torch.special.ndtri(half_ranks / (n + 1.0))  # at every possible average rank
    if host_sort and at.device.type == "cpu":
        order = torch.from_numpy(np.argsort(at.numpy(), axis=1))
        s = torch.gather(at, 1, order)
        change = s[:, 1:] != s[:, :-1]
        if bool(change.all()):  # no ties (continuous data): the k-th smallest has rank k + 1
            ranked = table[::2].expand(d, n)
            return torch.empty_like(ranked).scatter_(1, order, ranked).T
    else:
        s, order = torch.sort(at, dim=1)
        change = s[:, 1:] != s[:, :-1]
    idx = torch.arange(n, device=a.device, dtype=torch.int32).expand(d, n)
    starts = torch.ones((d, n), dtype=torch.bool, device=a.device)
    starts[:, 1:] = change
    ends = torch.ones((d, n), dtype=torch.bool, device=a.device)
    ends[:, :-1] = change
    first = torch.cummax(torch.where(starts, idx, 0), dim=1).values  # start of each tie group
    # end of each tie group: a running minimum from the right, written as a running maximum
    from_right = (n - 1) - torch.where(ends, idx, n - 1).flip(1)
    last = ((n - 1) - torch.cummax(from_right, dim=1).values).flip(1)
    # 2 * (average 1-based rank) - 2 = first + last indexes the table
    quantiles = table[(first + last).long()]
    return torch.empty_like(quantiles).scatter_(1, order, quantiles).T


def class_sums(g: np.ndarray, codes: np.ndarray, n_codes: int, w: np.ndarray) -> CellMoments:
    """The weighted sums of every class of ``codes`` (the Gaussian cells of the exact
    estimator: hard memberships, weights ``w``), on the host.

    The rows are grouped by one stable sort of the codes; each class's ``sum w g g^T`` is one
    BLAS product of its rows, so the whole matrix's sums are the classes' sums (no product over
    all rows) and nothing of size ``n * d^2`` is formed.
    """
    n, d = g.shape
    order = np.argsort(codes, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=n_codes))])
    gs, ws = g[order], w[order]
    t = np.empty((n_codes + 1, 1 + d + d * d))
    w2 = np.empty(n_codes + 1)
    for c in range(n_codes):
        gc, wc = gs[bounds[c] : bounds[c + 1]], ws[bounds[c] : bounds[c + 1]]
        t[c, 0] = wc.sum()
        t[c, 1 : 1 + d] = wc @ gc
        t[c, 1 + d :] = ((gc.T * wc) @ gc).ravel()
        w2[c] = wc @ wc
    t[n_codes] = t[:n_codes].sum(axis=0)
    w2[n_codes] = w2[:n_codes].sum()  # one cell per row: sum_j (row mass)^2 = sum_c w2_c
    return CellMoments.from_packed(torch.from_numpy(t), torch.from_numpy(w2), d)


def copula_normalize(a: np.ndarray) -> np.ndarray:
    """:func:`copula_ranks` of a numpy array (``(n, d)`` float64; a constant column maps to 0)."""
    with torch.no_grad():
        x = torch.as_tensor(np.asarray(a, dtype=np.float64))
        return copula_ranks(x, host_sort=True).numpy()


class GaussianCopulaEstimator(Estimator):
    """Gaussian-copula MI: copula-normalise, then Gaussian MI from log-determinants.

    Continuous-vs-discrete terms use class-conditional Gaussians:
    ``I(X; C) = H(X) - sum_c p(c) H(X | c)``. Entropies carry the analytic bias correction of
    Ince et al. (2017) computed with the (effective) sample size. A class whose effective size is
    at most the dimension gets its covariance shrunk towards a scaled identity (and no bias
    correction), so small classes never crash. Columns that are constant over all samples carry no
    information and are dropped. A continuous-vs-discrete estimate is clipped to the plug-in entropy
    of the discrete side (the exact upper bound, which a non-Gaussian class structure can make the
    Gaussian model overshoot). Integer columns of ``x`` are treated as ordinal values (ranked like
    continuous ones); when both arguments are discrete, the plug-in estimate is returned.

    Parameters
    ----------
    bias_correct : bool, default True
        Apply the analytic bias correction.
    ridge : float, default 1e-6
        Added to every covariance diagonal (copula-normalised scale, unit variance) for
        numerical stability.
    shrinkage : float, default 0.1
        Shrinkage intensity towards ``max(tr(S)/d, 1) * I`` for classes with effective size
        ``<= d + 1`` (their covariance would be singular or nearly so).
    limit_threads : bool, default False
        Run the batched factorisations on one torch thread (restored afterwards). On a CPU the
        factorisations of small matrices gain nothing from torch's thread pool, which competes
        with numpy's BLAS threads; this is an opt-in because the thread count is process-wide
        (another thread of the process using torch meanwhile sees it too).

    Examples
    --------
    >>> import numpy as np
    >>> from gibloss.estimators import GaussianCopulaEstimator
    >>> rng = np.random.default_rng(0)
    >>> cov = [[1.0, 0.8], [0.8, 1.0]]
    >>> xy = rng.multivariate_normal([0, 0], cov, size=5000)
    >>> truth = -0.5 * np.log2(1 - 0.8**2)
    >>> est = GaussianCopulaEstimator()
    >>> bool(abs(est.mutual_information(xy[:, :1], xy[:, 1:]) - truth) / truth < 0.03)
    True
    """

    name = "gaussian_copula"

    def __init__(
        self,
        bias_correct: bool = True,
        ridge: float = 1e-6,
        shrinkage: float = 0.1,
        limit_threads: bool = False,
    ):
        if not ridge >= 0:
            raise ValueError(f"`ridge` must be non-negative, got {ridge!r}")
        if not 0.0 <= shrinkage <= 1.0:
            raise ValueError(f"`shrinkage` must lie in [0, 1], got {shrinkage!r}")
        if not isinstance(limit_threads, bool):
            raise TypeError(f"`limit_threads` must be a bool, got {type(limit_threads).__name__}")
        self.bias_correct = bool(bias_correct)
        self.ridge = float(ridge)
        self.shrinkage = float(shrinkage)
        self.limit_threads = limit_threads

    def relaxation(self) -> tuple[str, dict[str, Any]] | None:
        """The class-conditional Gaussian copula with soft Q cells and the same options."""
        opts = {"shrinkage": self.shrinkage, "ridge": self.ridge, "bias_correct": self.bias_correct}
        return "gaussian_copula", opts

    def _threads(self) -> AbstractContextManager[None]:
        return single_thread() if self.limit_threads else nullcontext()

    # -- Gaussian building blocks ----------------------------------------------------------------

    @staticmethod
    def _moments(g: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, float]:
        """Weighted covariance (unbiased for uniform weights) and the effective sample size."""
        wsum = w.sum()
        n_eff = effective_size(w)
        mu = w @ g / wsum
        # E_w[g g^T] - mu mu^T: one GEMM without a centred copy (copula-normalised data have unit
        # scale, so the cancellation costs nothing measurable in float64)
        cov = (g.T * w) @ g / wsum - np.outer(mu, mu)
        if n_eff > 1:
            cov *= n_eff / (n_eff - 1.0)
        return cov, n_eff

    def _entropies_batch(
        self, covs: np.ndarray, n_effs: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Gaussian entropies (bits) for covariances ``(C, d, d)``: whole, singles, complements.

        Delegates to :func:`gibloss.estimators._gaussian.gaussian_entropies`, the same code the
        differentiable surrogate uses.
        """
        with torch.no_grad(), self._threads():
            out = gaussian_entropies(
                torch.as_tensor(np.asarray(covs), dtype=torch.float64),
                torch.as_tensor(np.asarray(n_effs), dtype=torch.float64),
                shrinkage=self.shrinkage,
                ridge=self.ridge,
                bias_correct=self.bias_correct,
            )
        return tuple(o.numpy() for o in out)  # type: ignore[return-value]

    def _entropies(self, g: np.ndarray, w: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """Gaussian entropies (bits) of the whole matrix, each single column and each complement."""
        cov, n_eff = self._moments(g, w)
        hw, hs, hc, _ = self._entropies_batch(cov[None], np.array([n_eff]))
        return float(hw[0]), hs[0], hc[0]

    @staticmethod
    def _prepare(a: np.ndarray) -> np.ndarray:
        return copula_normalize(a)

    # -- public interface ------------------------------------------------------------------------

    def entropy(self, a: np.ndarray, weights: np.ndarray | None = None) -> float:
        """Entropy (bits); for continuous ``a``, the Gaussian entropy of its copula transform."""
        if a.dtype.kind in "iu":
            return self._discrete_entropy(a, weights)
        g = self._prepare(a)
        return float(self._entropies(g, uniform_if_none(len(a), weights))[0])

    def _mi_with_symbols(
        self, a: np.ndarray, codes: np.ndarray, weights: np.ndarray | None
    ) -> float:
        """The whole term of :meth:`feature_terms` (one shrinkage decision for every cell)."""
        return self.feature_terms(a, codes, weights).whole

    def feature_terms(
        self, x: np.ndarray, target: np.ndarray, weights: np.ndarray | None = None
    ) -> FeatureTerms:
        """All ``2N + 1`` terms from one covariance per class (complements via the precision diag).

        ``log det S_{-i,-i} = log det S + log (S^{-1})_{ii}`` gives every complement's
        log-determinant from one inverse. ``target`` may be discrete (class-conditional Gaussians)
        or continuous (joint Gaussian with the copula-normalised target).
        """
        if x.dtype.kind in "iu" and target.dtype.kind in "iu":
            return BinningEstimator().feature_terms(x, target, weights)  # plug-in on symbols
        n, n_feat = x.shape
        w = uniform_if_none(n, weights)
        g = self._prepare(x)
        keep = g.any(axis=0)  # informative_columns on the host: a constant column is all zeros
        keep_t = torch.from_numpy(keep)
        if not keep.any():
            zeros = np.zeros(n_feat)
            return FeatureTerms(0.0, zeros, zeros.copy(), {"constant_features": ~keep})
        gk = g[:, keep]
        if target.dtype.kind in "iu":
            # The Gaussian-copula GIB terms from the classes' sums: the function the default
            # loss trains with (soft cells there), here with hard cells and no gradient.
            codes, n_codes = row_codes(target)
            with torch.no_grad(), self._threads():
                terms = terms_from_moments(
                    class_sums(gk, codes, n_codes, w),
                    shrinkage=self.shrinkage,
                    ridge=self.ridge,
                    bias_correct=self.bias_correct,
                )
            whole = float(terms.whole)
            s = terms.single.numpy()
            cpl = terms.complement.numpy()
            diag = {"constant_features": ~keep, "shrunk_classes": int(terms.n_shrunk)}
        else:
            gt = self._prepare(target)
            ht = self._entropies(gt, w)[0]
            hx = self._entropies(gk, w)
            hxt = self._entropies(np.hstack([gk, gt]), w)
            # joint entropies of (X^i, T) and (X^{-i}, T)
            d = gk.shape[1]
            h_single_t = np.array(
                [self._entropies(np.hstack([gk[:, [i]], gt]), w)[0] for i in range(d)]
            )
            whole = hx[0] + ht - hxt[0]
            s = hx[1] + ht - h_single_t
            cpl = hx[2] + ht - hxt[2][:d]
            diag = {"constant_features": ~keep}
        single = np.zeros(n_feat)
        complement = np.zeros(n_feat)
        single[keep] = np.maximum(s, 0.0)
        complement[keep] = np.maximum(cpl, 0.0)
        filled = fill_constant_columns(
            torch.tensor(max(float(whole), 0.0), dtype=torch.float64),
            torch.as_tensor(single),
            torch.as_tensor(complement),
            keep_t,
        )
        return FeatureTerms(float(filled[0]), filled[1].numpy(), filled[2].numpy(), diag)

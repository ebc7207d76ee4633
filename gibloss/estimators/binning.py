"""Histogram binning: the paper's estimator (after Shwartz-Ziv & Tishby and Saxe et al.)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ._discrete import (
    combine,
    dense,
    plugin_entropy,
    plugin_mi,
    row_codes,
)
from ._partitions import (
    BinnedPartitions,
    PartitionTerms,
    equal_width_codes,
    partition_terms,
    row_partitions,
)
from .base import Estimator, FeatureTerms

__all__ = [
    "BinnedPartitions",
    "equal_width_codes",
    "row_partitions",
    "BinningEstimator",
    "PartitionTerms",
    "partition_terms",
    "unique_row_fraction",
]

_STRATEGIES = ("uniform", "fixed", "width", "quantile")


class BinningEstimator(Estimator):
    """Plug-in mutual information after discretising every column into bins.

    A multi-column variable's state is its whole binned row (joint row identity). Integer and bool
    arrays are already-discrete symbols and are never re-binned.

    Parameters
    ----------
    bins : int, default 30
        Number of bins per column (strategies ``"uniform"``, ``"fixed"``, ``"quantile"``).
    strategy : {"uniform", "fixed", "width", "quantile"}, default "uniform"
        ``"uniform"``: equal-width bins over each column's own min-max. ``"fixed"``: equal-width
        bins over ``range`` for every column (values outside are clipped into the edge bins).
        ``"width"``: bins of width ``width`` on a grid anchored at 0, unbounded (Saxe et al. used
        0.07). ``"quantile"``: equal-mass bins per column (tied values share a bin).
    range : tuple of float, optional
        ``(lo, hi)`` for ``strategy="fixed"``.
    width : float, optional
        Bin width for ``strategy="width"``.

    Examples
    --------
    >>> import numpy as np
    >>> from gibloss.estimators import BinningEstimator
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(1000, 1))
    >>> est = BinningEstimator(bins=10)
    >>> round(est.mutual_information(x, x), 2) == round(est.entropy(x), 2)
    True
    """

    name = "binning"
    discrete = True
    default_z_code = "probs"

    def __init__(
        self,
        bins: int = 30,
        strategy: str = "uniform",
        range: tuple[float, float] | None = None,  # noqa: A002 - mirrors numpy.histogram
        width: float | None = None,
    ) -> None:
        if not isinstance(bins, (int, np.integer)) or isinstance(bins, bool) or bins < 1:
            raise ValueError(f"`bins` must be a positive integer, got {bins!r}")
        if strategy not in _STRATEGIES:
            raise ValueError(f"`strategy` must be one of {_STRATEGIES}, got {strategy!r}")
        if strategy == "fixed":
            if range is None or len(range) != 2 or not float(range[0]) < float(range[1]):
                raise ValueError(
                    f"`range` must be (lo, hi) with lo < hi for strategy='fixed', got {range!r}"
                )
        if strategy == "width" and (width is None or not float(width) > 0):
            raise ValueError(
                f"`width` must be a positive float for strategy='width', got {width!r}"
            )
        self.bins = int(bins)
        self.strategy = strategy
        self.range = None if range is None else (float(range[0]), float(range[1]))
        self.width = None if width is None else float(width)

    # -- discretisation --------------------------------------------------------------------------

    def relaxation(self) -> tuple[str, dict[str, Any]] | None:
        """Soft binning over the same number of equal-width bins (uniform strategy only)."""
        return ("binning", {"bins": self.bins}) if self.strategy == "uniform" else None

    def discretize(self, a: np.ndarray) -> np.ndarray:
        """Integer bin codes ``(n, d)`` (each column's codes start at 0)."""
        if a.dtype.kind in "iub":
            out = np.empty(a.shape, dtype=np.int64)
            for j in range(a.shape[1]):
                out[:, j], _ = dense(a[:, j])
            return out
        b = self.bins
        if self.strategy == "uniform":
            return equal_width_codes(torch.as_tensor(a), b).numpy()
        if self.strategy == "fixed":
            lo, hi = self.range  # type: ignore[misc]
            return equal_width_codes(torch.as_tensor(a), b, lo, hi).numpy()
        if self.strategy == "width":
            # Dense-coded: memory stays O(n) however far apart the values are, and floor() is
            # taken in float64, so no int64 cast can overflow for huge magnitudes.
            cells = np.floor(a / self.width)
            out = np.empty(a.shape, dtype=np.int64)
            for j in range(a.shape[1]):
                out[:, j], _ = dense(cells[:, j])
            return out
        # quantile
        qs = np.linspace(0.0, 1.0, b + 1)[1:-1]
        out = np.empty(a.shape, dtype=np.int64)
        for j in range(a.shape[1]):
            edges = np.unique(np.quantile(a[:, j], qs))
            out[:, j] = np.searchsorted(edges, a[:, j], side="right")
        return out

    def codes(self, a: np.ndarray) -> tuple[np.ndarray, int]:
        """Dense state of every row of ``a`` after binning, and the number of states."""
        return self._codes(a)

    def _codes(self, a: np.ndarray, chunk: int = 16) -> tuple[np.ndarray, int]:
        """Dense row identity of the binned rows of ``a``.

        Wide float arrays are binned ``chunk`` columns at a time (every strategy bins columns
        independently), stopping as soon as the rows are all distinct: later columns cannot
        split them further, so a 1000-unit layer usually costs a few dozen columns.
        """
        n, d = a.shape
        if d <= chunk or a.dtype.kind in "iub":
            return row_codes(self.discretize(a))
        code, k = row_codes(self.discretize(a[:, :chunk]))
        for s in range(chunk, d, chunk):
            if k == n:
                break
            part, kp = row_codes(self.discretize(a[:, s : s + chunk]))
            code, k = combine(code, k, part, kp)
        return code, k

    # -- measures --------------------------------------------------------------------------------

    def entropy(self, a: np.ndarray, weights: np.ndarray | None = None) -> float:
        codes, k = self._codes(a)
        return plugin_entropy(codes, weights, k)

    def mutual_information(
        self, a: np.ndarray, b: np.ndarray, weights: np.ndarray | None = None
    ) -> float:
        ca, ka = self._codes(a)
        cb, kb = self._codes(b)
        return plugin_mi(ca, ka, cb, kb, weights)

    def partitions(self, x: np.ndarray | torch.Tensor) -> BinnedPartitions:
        """Hard row identities of every single column, every complement and the whole matrix.

        This is the data side of every binned ``2N + 1`` computation, shared by the exact
        estimator and the differentiable soft-binning surrogate (:func:`row_partitions`). A
        tensor is binned in torch on its own device (strategies ``"uniform"`` and ``"fixed"``),
        with no host synchronisation.
        """
        if isinstance(x, torch.Tensor):
            if self.strategy not in ("uniform", "fixed"):
                raise ValueError(
                    f"binning a tensor needs strategy 'uniform' or 'fixed', got {self.strategy!r}"
                )
            lo, hi = (None, None) if self.range is None else self.range
            return row_partitions(equal_width_codes(x, self.bins, lo, hi), self.bins)
        cx = self.discretize(x)
        card = int(cx.max()) + 1 if cx.size else 1
        parts = row_partitions(torch.as_tensor(cx), card, short_circuit=True)
        if bool(parts.clash):  # exact path: the state counts must be right too
            parts = row_partitions(torch.as_tensor(cx), card, lexicographic=True)
        return parts

    def feature_terms(
        self, x: np.ndarray, target: np.ndarray, weights: np.ndarray | None = None
    ) -> FeatureTerms:
        """All ``2N + 1`` terms in one vectorised pass.

        Every column is discretised once (:meth:`partitions`); the plug-in tables are those of
        :func:`partition_terms`, the one implementation the soft-binning surrogate also uses, here
        with hard cells (the target's codes) and the sample weights as their mass. A complement
        with the whole matrix's partition has the whole matrix's term, which is not recomputed.
        ``diagnostics["complement_is_whole"]`` flags those features and
        ``diagnostics["saturated"]`` flags complements whose rows are all distinct (their term is
        then exactly the weighted ``H(T)``).
        """
        n, n_feat = x.shape
        parts = self.partitions(x)
        t, kt = self._codes(target)
        w = np.full(n, 1.0 / n) if weights is None else weights
        with torch.no_grad():
            terms = partition_terms(
                parts, torch.as_tensor(t), kt, torch.as_tensor(w, dtype=torch.float64)[:, None]
            )
        cards = parts.cards.numpy()
        comp_states = cards[:n_feat].copy()
        if n_feat == 1:
            comp_states[:] = 1
        diagnostics = {
            "unique_row_fraction": int(cards[n_feat]) / n,
            "complement_unique_fraction": comp_states / n,
            "complement_is_whole": comp_states == cards[n_feat],
            "saturated": comp_states == n,
            "target_entropy": float(terms.h_q),
        }
        return FeatureTerms(
            float(terms.whole), terms.single.numpy(), terms.complement.numpy(), diagnostics
        )

    def feature_terms_batch(
        self, x: np.ndarray, target: np.ndarray, weights: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All ``2N + 1`` terms under ``B`` measures (``weights`` ``(B, n)``) in one pass.

        The partitions are built once; :func:`partition_terms` evaluates every measure at once.
        """
        parts = self.partitions(x)
        t, kt = self._codes(target)
        mass = torch.as_tensor(np.ascontiguousarray(weights.T), dtype=torch.float64)[:, :, None]
        with torch.no_grad():
            terms = partition_terms(parts, torch.as_tensor(t), kt, mass)
        return terms.whole.numpy(), terms.single.numpy(), terms.complement.numpy()


def unique_row_fraction(codes_or_x: np.ndarray, estimator: BinningEstimator | None = None) -> float:
    """Fraction of distinct rows after binning (1.0 means every row is its own state).

    When it is close to 1, ``I(X; T)`` saturates at ``H(T)`` whatever the data: binning can no
    longer see any structure.
    """
    est = estimator or BinningEstimator()
    _, k = est._codes(codes_or_x)
    return k / codes_or_x.shape[0]

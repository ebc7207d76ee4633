"""Histogram binning: the paper's estimator (after Shwartz-Ziv & Tishby and Saxe et al.)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ._discrete import combine, dense, entropy_bits, plugin_entropy, plugin_mi, row_codes
from ._gaussian import single_thread
from .base import Estimator, FeatureTerms

__all__ = [
    "BinnedPartitions",
    "BinningEstimator",
    "PartitionTerms",
    "partition_terms",
    "unique_row_fraction",
]

_LN2 = float(np.log(2.0))
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

    def discretize(self, a: np.ndarray) -> np.ndarray:
        """Integer bin codes ``(n, d)`` (each column's codes start at 0)."""
        if a.dtype.kind in "iub":
            out = np.empty(a.shape, dtype=np.int64)
            for j in range(a.shape[1]):
                out[:, j], _ = dense(a[:, j])
            return out
        b = self.bins
        if self.strategy == "uniform":
            return _equal_width_codes(a, a.min(axis=0), a.max(axis=0), b)
        if self.strategy == "fixed":
            lo, hi = self.range  # type: ignore[misc]
            clipped = np.clip(a, lo, hi)  # values outside the range go to the edge bins
            n_col = a.shape[1]
            return _equal_width_codes(clipped, np.full(n_col, lo), np.full(n_col, hi), b)
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

    def partitions(self, x: np.ndarray) -> BinnedPartitions:
        """Hard row identities of every single column, every complement and the whole matrix.

        This is the data side of every binned ``2N + 1`` computation, shared by the exact
        estimator and the differentiable soft-binning surrogate. Complement identities come from
        prefix and suffix codes; once a prefix or suffix separates the rows as finely as the whole
        matrix does, every complement that contains it has the whole matrix's partition and is not
        built (``complement[i] is None``).
        """
        n, n_feat = x.shape
        cx = self.discretize(x)
        cards = cx.max(axis=0) + 1
        # Rows that a prefix already tells apart stay apart: once a prefix is injective the whole
        # matrix is too and the remaining columns are skipped.
        full, k_full = np.zeros(n, dtype=np.int64), 1
        for i in range(n_feat):
            if k_full == n:
                break
            full, k_full = combine(full, k_full, cx[:, i], int(cards[i]))
        complement: list[tuple[np.ndarray, int] | None] = [None] * n_feat
        if n_feat == 1:
            complement[0] = (np.zeros(n, dtype=np.int64), 1)
        else:
            prefix: list[tuple[np.ndarray, int] | None] = [None] * n_feat
            suffix: list[tuple[np.ndarray, int] | None] = [None] * n_feat
            code, k = np.zeros(n, dtype=np.int64), 1
            for i in range(n_feat):
                if k == k_full:
                    break  # this and every later prefix has the whole matrix's partition
                prefix[i] = (code, k)
                code, k = combine(code, k, cx[:, i], int(cards[i]))
            code, k = np.zeros(n, dtype=np.int64), 1
            for i in range(n_feat - 1, -1, -1):
                if k == k_full:
                    break
                suffix[i] = (code, k)
                code, k = combine(cx[:, i], int(cards[i]), code, k)
            for i in range(n_feat):
                if prefix[i] is None or suffix[i] is None:
                    continue
                pc, pk = prefix[i]  # type: ignore[misc]
                sc, sk = suffix[i]  # type: ignore[misc]
                cc, ck = combine(pc, pk, sc, sk)
                if ck < k_full:
                    complement[i] = (cc, ck)
        return BinnedPartitions(cx, cards, full, k_full, complement)

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
        with torch.no_grad(), single_thread():
            terms = partition_terms(
                parts, torch.as_tensor(t), kt, torch.as_tensor(w, dtype=torch.float64)[:, None]
            )
        comp_states = np.array(
            [parts.whole_card if p is None else p[1] for p in parts.complement]
        )
        if n_feat == 1:
            comp_states[:] = 1
        diagnostics = {
            "unique_row_fraction": parts.whole_card / n,
            "complement_unique_fraction": comp_states / n,
            "complement_is_whole": np.array([p is None for p in parts.complement]),
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
        with torch.no_grad(), single_thread():
            terms = partition_terms(parts, torch.as_tensor(t), kt, mass)
        return terms.whole.numpy(), terms.single.numpy(), terms.complement.numpy()


@dataclass
class PartitionTerms:
    """``I(S; Q)`` (bits) for the whole matrix, every single column and every complement."""

    whole: torch.Tensor
    single: torch.Tensor
    complement: torch.Tensor
    h_q: torch.Tensor


def _table(codes: torch.Tensor, card: int, hard: torch.Tensor, n_hard: int, mass: torch.Tensor):
    """Joint table (occupied (state, code) rows x K) of a hard partition with Q's mass."""
    n = hard.shape[0]
    idx = codes * n_hard + hard
    size = card * n_hard
    if size > 4 * n:  # sparse: only the occupied (state, code) pairs
        idx = torch.unique(idx, return_inverse=True)[1]
        size = int(idx.max()) + 1
    return mass.new_zeros((size, mass.shape[1])).index_add(0, idx, mass), idx


#: Above this many entries (rows x features x measures x Z codes) the single-feature tables of
#: :func:`partition_terms` are filled one feature at a time instead of from one repeated copy.
_EXPAND_LIMIT = 1 << 22


def partition_terms(
    parts: BinnedPartitions, hard: torch.Tensor, n_hard: int, mass: torch.Tensor
) -> PartitionTerms:
    """Plug-in ``I(S; Q)`` of hard partitions ``S`` with a (soft) Q: the one implementation.

    A Q cell is ``(h, c)``: sample ``j`` sits in the cells ``(hard[j], c)`` with mass
    ``mass[j, c]`` (masses sum to one). The exact binning estimator calls it with hard cells
    (``hard`` = the target's codes, ``mass`` = the sample weights as one column); the
    soft-binning surrogate with the target's codes and soft memberships over Z codes. With the
    joint table ``P(s, h, c)``, ``I(S; Q) = H(S) + H(Q) - H(S, Q)``. A partition whose states are
    all distinct (every row its own state, "saturated") contributes ``H(Q)``, its value with hard
    cells, for soft cells too: the plug-in value would reward each row's membership entropy.

    A mass of shape ``(n, B, K)`` evaluates ``B`` measures over the same rows at once (the
    bootstrap resamples of :func:`gibloss.gib`): every term then has a leading ``B`` axis. A
    partition saturated on the rows stays saturated under any reweighting of them, so its term is
    each measure's ``H(Q)``.

    Parameters
    ----------
    parts : BinnedPartitions
        Row identities of the single columns, complements and whole matrix.
    hard : torch.Tensor
        ``(n,)`` long codes in ``[0, n_hard)``.
    n_hard : int
        Number of codes.
    mass : torch.Tensor
        ``(n, K)`` non-negative masses summing to one (may carry gradient), or ``(n, B, K)``
        with each of the ``B`` measures summing to one.

    Returns
    -------
    PartitionTerms
    """
    n, n_feat = parts.single.shape
    batched = mass.ndim == 3
    m3 = mass if batched else mass[:, None, :]
    nb, kc = m3.shape[1], m3.shape[2]
    flat = m3.reshape(n, nb * kc)
    row_mass = m3.sum(dim=2)  # (n, B)
    dev = mass.device
    cell = flat.new_zeros((n_hard, nb * kc)).index_add(0, hard, flat)
    h_q = entropy_bits(cell.view(n_hard, nb, kc), dim=(0, 2))  # (B,)
    # Singles: one table (feature, bin, code, Z code) for all features at once; when it would be
    # mostly empty (many codes), only its occupied rows, found by one sort.
    bmax = int(parts.single_cards.max())
    feat = torch.arange(n_feat, device=dev)[None, :]
    codes = torch.as_tensor(parts.single, device=dev)
    bin_idx = (feat * bmax + codes).reshape(-1)
    idx = (bin_idx.view(n, n_feat) * n_hard + hard[:, None]).reshape(-1)
    dense_table = bmax * n_hard <= 4 * n
    if dense_table:
        rows_of, n_rows = idx, n_feat * bmax * n_hard
    else:
        occupied, rows_of = torch.unique(idx, return_inverse=True)
        n_rows = occupied.shape[0]
    table = flat.new_zeros((n_rows, nb * kc))
    if n * n_feat * nb * kc <= _EXPAND_LIMIT:  # one scatter of the rows repeated per feature
        src = flat.unsqueeze(1).expand(n, n_feat, nb * kc).reshape(-1, nb * kc)
        table = table.index_add(0, rows_of, src)
    else:  # many measures or Z codes: one scatter per feature, without the repeated copy
        per_feature = rows_of.view(n, n_feat)
        for i in range(n_feat):
            table.index_add_(0, per_feature[:, i], flat)
    # the bins' masses are the table's margins
    if dense_table:
        h_joint = entropy_bits(table.view(n_feat, bmax * n_hard, nb, kc), dim=(1, 3))
        bins_mass = table.view(n_feat * bmax, n_hard, nb, kc).sum(dim=(1, 3))
    else:
        owner = occupied // (bmax * n_hard)  # the feature of each occupied row
        h_joint = flat.new_zeros((n_feat, nb)).index_add(
            0, owner, entropy_bits(table.view(-1, nb, kc), dim=2)
        )
        bins_mass = flat.new_zeros((n_feat * bmax, nb)).index_add(
            0, occupied // n_hard, table.view(-1, nb, kc).sum(dim=2)
        )
    h_bins = entropy_bits(bins_mass.view(n_feat, bmax, nb), dim=1)  # (N, B)
    single = (h_bins + h_q - h_joint).T  # (B, N)

    def mi(codes_np: np.ndarray, card: int) -> torch.Tensor:
        if card == 1:
            return h_q - h_q  # a single state carries no information
        if card == n:
            # Every row its own state. With hard cells (the exact estimator) the term is H(Q);
            # with soft cells the plug-in value H(Q) - sum_j rho_j H(pi_j) would add a reward for
            # each row's own membership entropy: a confidence penalty, not information about
            # the partition. The partition contributes H(Q), as in the exact estimator.
            return h_q
        codes_t = torch.as_tensor(codes_np, device=dev)
        joint, _ = _table(codes_t, card, hard, n_hard, flat)
        states = flat.new_zeros((card, nb)).index_add(0, codes_t, row_mass)
        return entropy_bits(states, dim=0) + h_q - entropy_bits(joint.view(-1, nb, kc), dim=(0, 2))

    whole = mi(parts.whole, parts.whole_card)
    if n_feat == 1:
        comp = torch.zeros_like(single)
    else:
        cache: dict[int, torch.Tensor] = {}
        comps = []
        for part in parts.complement:
            if part is None:
                comps.append(whole)
            elif part[1] == n:
                cache.setdefault(n, mi(part[0], n))
                comps.append(cache[n])
            else:
                comps.append(mi(part[0], part[1]))
        comp = torch.stack(comps, dim=1)  # (B, N)
    terms = PartitionTerms(whole.clamp_min(0.0), single.clamp_min(0.0), comp.clamp_min(0.0), h_q)
    if not batched:
        terms = PartitionTerms(terms.whole[0], terms.single[0], terms.complement[0], h_q[0])
    return terms


def _equal_width_codes(a: np.ndarray, lo: np.ndarray, hi: np.ndarray, bins: int) -> np.ndarray:
    """``floor((a - lo) / (hi - lo) * bins)`` clipped to ``[0, bins)``; a zero span gives bin 0.

    Columns whose span overflows float64 (values near ``±1.8e308``) are halved first, an exact
    operation, so their codes are the same as in exact arithmetic.
    """
    with np.errstate(over="ignore"):
        span = hi - lo
    huge = ~np.isfinite(span)
    if huge.any():
        a = a.copy()
        a[:, huge] *= 0.5
        lo, hi = lo.copy(), hi.copy()
        lo[huge] *= 0.5
        hi[huge] *= 0.5
        span = hi - lo
    safe = np.where(span > 0, span, 1.0)
    codes = np.clip(np.floor((a - lo) / safe * bins), 0, bins - 1).astype(np.int64)
    codes[:, span <= 0] = 0
    return codes


@dataclass
class BinnedPartitions:
    """Hard partitions of the rows induced by binned features (the data side of binned GIB).

    Attributes
    ----------
    single : numpy.ndarray
        ``(n, N)`` bin code of every column.
    single_cards : numpy.ndarray
        ``(N,)`` number of codes per column.
    whole, whole_card
        Dense row identity of the whole binned matrix and its number of states.
    complement : list
        Per feature ``i``, ``(codes, card)`` of the complement ``x^{-i}``, or ``None`` when it has
        the whole matrix's partition.
    """

    single: np.ndarray
    single_cards: np.ndarray
    whole: np.ndarray
    whole_card: int
    complement: list[tuple[np.ndarray, int] | None]


def unique_row_fraction(codes_or_x: np.ndarray, estimator: BinningEstimator | None = None) -> float:
    """Fraction of distinct rows after binning (1.0 means every row is its own state).

    When it is close to 1, ``I(X; T)`` saturates at ``H(T)`` whatever the data: binning can no
    longer see any structure.
    """
    est = estimator or BinningEstimator()
    _, k = est._codes(codes_or_x)
    return k / codes_or_x.shape[0]

"""The partition kernels of the binning estimator, in torch: one implementation for the exact
estimator (hard Q, no gradient) and soft binning (soft Q memberships, with gradient).

A binned feature matrix defines ``2N + 1`` partitions of its rows: the whole row, each single
column and each complement (every column but one). :func:`row_partitions` codes them with
additive row hashes (a complement's hash is the whole row's minus one column's), finds the
complements that are injective (every row its own state) from prefix and suffix codes without
sorting them, and :func:`partition_terms` forms ``I(S; Q)`` of every partition with one batched
sort or scatter of (state, Q cell) counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ._discrete import entropy_bits, host_to_device

__all__ = [
    "BinnedPartitions",
    "PartitionTerms",
    "equal_width_codes",
    "partition_terms",
    "row_partitions",
]



@dataclass
class PartitionTerms:
    """``I(S; Q)`` (bits) for the whole matrix, every single column and every complement."""

    whole: torch.Tensor
    single: torch.Tensor
    complement: torch.Tensor
    h_q: torch.Tensor


#: Above this many entries (rows x features x measures x Z codes) the single-feature tables of
#: :func:`partition_terms` are filled one feature at a time instead of from one repeated copy,
#: and the complement tables are built a few partitions at a time.
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

    Everything stays on ``mass``'s device, with no host synchronisation: the joint states
    ``(s, h)`` of every complement and the whole matrix are found by one sort of their hashes
    (:func:`row_partitions`).

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
    dev = mass.device
    hard = hard.to(dev)
    cell = flat.new_zeros((n_hard, nb * kc)).index_add(0, hard, flat)
    h_q = entropy_bits(cell.view(n_hard, nb, kc), dim=(0, 2))  # (B,)
    single = _single_terms(parts, hard, n_hard, flat, nb, kc, h_q)  # (B, N)
    # complements and the whole matrix: H(S) and H(S, Q) of every partition from hashed states
    # Every row its own state ("saturated"): the term is H(Q) (hard cells: exactly; soft cells:
    # by definition), no table needed. Outside torch.compile one host synchronisation selects
    # the other partitions; compiled, every partition is tabled.
    saturated = parts.cards == n
    if torch.compiler.is_compiling():
        todo = torch.arange(n_feat + 1, device=dev)
    else:
        todo = torch.nonzero(~saturated).view(-1)
    mi = h_q[:, None].expand(nb, n_feat + 1).clone()
    chunk = max(1, _EXPAND_LIMIT // max(1, n * nb * kc))
    row_mass = m3.sum(dim=2)
    clash = parts.clash
    lexicographic = parts.lexicographic
    for p0 in range(0, todo.shape[0], chunk):
        idx = todo[p0 : p0 + chunk]
        keys = parts.keys_of(idx)
        h_s, clash_s = _grouped_entropy(keys, row_mass, nb, 1, lexicographic)  # (P, B)
        joint_keys = keys + hard[None, None, :] * parts.hard_multiplier[:, None, None]
        h_sq, clash_sq = _grouped_entropy(joint_keys, flat, nb, kc, lexicographic)
        clash = clash | clash_s | clash_sq
        mi_chunk = h_s + h_q[None, :] - h_sq
        mi = mi.index_copy(1, idx, torch.where(saturated[idx, None], h_q[None, :], mi_chunk).T)
    if not lexicographic and not torch.compiler.is_compiling() and bool(clash):
        # two states shared a 64-bit hash (about 2^-59 per pair): group by both hashes instead
        exact = row_partitions(parts.single, parts.single_card, lexicographic=True)
        return partition_terms(exact, hard, n_hard, mass)
    whole = mi[:, n_feat]
    comp = torch.zeros_like(single) if n_feat == 1 else mi[:, :n_feat]
    terms = PartitionTerms(whole.clamp_min(0.0), single.clamp_min(0.0), comp.clamp_min(0.0), h_q)
    if not batched:
        terms = PartitionTerms(terms.whole[0], terms.single[0], terms.complement[0], h_q[0])
    return terms


def _single_terms(
    parts: BinnedPartitions,
    hard: torch.Tensor,
    n_hard: int,
    flat: torch.Tensor,
    nb: int,
    kc: int,
    h_q: torch.Tensor,
) -> torch.Tensor:
    """``(B, N)`` ``I(X^i; Q)``: one table (feature, bin, code, Z code) for all features."""
    n, n_feat = parts.single.shape
    dev = flat.device
    bmax = parts.single_card
    feat = torch.arange(n_feat, device=dev)[None, :]
    codes = parts.single.to(dev)
    rows_of = ((feat * bmax + codes) * n_hard + hard[:, None]).reshape(-1)
    n_rows = n_feat * bmax * n_hard
    if n_rows > 4 * n * n_feat:  # mostly empty (many codes): hash-sort the occupied rows instead
        keys = rows_of.view(1, n, n_feat).permute(0, 2, 1).expand(2, n_feat, n)
        rows_of, _ = _group_codes(keys.reshape(2, -1))  # exact keys: no clash possible
        rows_of = rows_of.view(n_feat, n).T.reshape(-1)
        owner_row = torch.zeros(n * n_feat, dtype=torch.long, device=dev).scatter_(
            0, rows_of, feat.expand(n, n_feat).reshape(-1)
        )
        bin_row = torch.zeros(n * n_feat, dtype=torch.long, device=dev).scatter_(
            0, rows_of, (feat * bmax + codes).reshape(-1)
        )
        n_rows = n * n_feat
    else:
        owner_row = torch.arange(n_rows, device=dev) // (bmax * n_hard)
        bin_row = torch.arange(n_rows, device=dev) // n_hard
    if nb * kc == 1:  # hard cells (the exact estimator): a 1-d scatter is twice as fast
        src = flat.expand(n, n_feat).reshape(-1)
        table = flat.new_zeros(n_rows).index_add_(0, rows_of, src).unsqueeze(1)
    elif n * n_feat * nb * kc <= _EXPAND_LIMIT:  # one scatter of the rows repeated per feature
        src = flat.unsqueeze(1).expand(n, n_feat, nb * kc).reshape(-1, nb * kc)
        table = flat.new_zeros((n_rows, nb * kc)).index_add(0, rows_of, src)
    else:  # many measures or Z codes: one scatter per feature, without the repeated copy
        table = flat.new_zeros((n_rows, nb * kc))
        per_feature = rows_of.view(n, n_feat)
        for i in range(n_feat):
            table.index_add_(0, per_feature[:, i], flat)
    t3 = table.view(n_rows, nb, kc)
    h_joint = flat.new_zeros((n_feat, nb)).index_add(0, owner_row, _plogp(t3).sum(dim=2))
    bins_mass = flat.new_zeros((n_feat * bmax, nb)).index_add(0, bin_row, t3.sum(dim=2))
    h_bins = _plogp(bins_mass).view(n_feat, bmax, nb).sum(dim=1)
    return (h_bins + h_q - h_joint).T


def _plogp(p: torch.Tensor) -> torch.Tensor:
    """Element-wise ``-p log2 p`` (0 where ``p = 0``, finite gradients)."""
    return entropy_bits(p.unsqueeze(-1), dim=-1)


def _grouped_entropy(
    keys: torch.Tensor, mass: torch.Tensor, nb: int, kc: int, lexicographic: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(P, B)`` plug-in entropies of the states of ``P`` partitions with per-row masses.

    ``keys`` ``(2, P, n)``: two independent hashes of every row's state in each partition (the
    partition's index is part of the hash); ``mass`` ``(n, B * kc)``: the rows' masses, summed
    over the ``kc`` columns of a measure after the states' masses are formed. Also returns the
    clash flag of :func:`_group_codes`.
    """
    _, n_p, n = keys.shape
    codes, clash = _group_codes(keys.reshape(2, -1), lexicographic)  # in [0, P * n)
    owner_rows = torch.arange(n_p, device=keys.device).repeat_interleave(n)
    owner = torch.zeros(n_p * n, dtype=torch.long, device=keys.device).scatter_(
        0, codes, owner_rows
    )
    src = mass.repeat(n_p, 1)
    table = mass.new_zeros((n_p * n, mass.shape[1])).index_add(0, codes, src)
    ent = _plogp(table.view(n_p * n, nb, kc)).sum(dim=2)  # (P * n, B)
    return mass.new_zeros((n_p, nb)).index_add(0, owner, ent), clash


def _sorted_groups(
    keys: torch.Tensor, lexicographic: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Groups of equal ``(keys[0], keys[1])`` pairs, found by sorting, without synchronising.

    Returns the sort order, the mask (in sorted order) of each group's first element, and a flag
    (a 0-d tensor) that is true when two elements share the first hash but not the second. By
    default one sort of the first hash groups the elements and the second only checks it: two
    different states share a 64-bit hash with probability about ``2^-59`` per pair, and such a
    clash is flagged (the caller recomputes with ``lexicographic=True``, two stable sorts that
    group by both hashes).
    """
    primary, check = keys[0], keys[1]
    if lexicographic:
        by_check = torch.argsort(check, stable=True)
        order = by_check[torch.argsort(primary[by_check], stable=True)]
        s = primary[order]
    else:
        s, order = torch.sort(primary)
    c = check[order]
    same_primary = s[1:] == s[:-1]
    same_check = c[1:] == c[:-1]
    clash = (same_primary & ~same_check).any() & (not lexicographic)
    new = torch.ones_like(s, dtype=torch.bool)
    new[1:] = ~(same_primary & same_check) if lexicographic else ~same_primary
    return order, new, clash


def _group_codes(
    keys: torch.Tensor, lexicographic: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Dense codes in ``[0, M)`` of the groups of :func:`_sorted_groups`, and its clash flag."""
    order, new, clash = _sorted_groups(keys, lexicographic)
    gid = torch.cumsum(new, dim=0) - 1
    return torch.empty_like(gid).scatter_(0, order, gid), clash


#: Seed of the hash multipliers of :func:`row_partitions` (fixed: results are reproducible).
_HASH_SEED = 0x61B1055


def _multipliers(count: int, device: torch.device) -> torch.Tensor:
    """``(2, count)`` odd int64 multipliers of two independent row hashes (the same everywhere)."""
    gen = torch.Generator().manual_seed(_HASH_SEED)
    m = torch.randint(0, 2**62, (2, count), generator=gen, dtype=torch.long) * 2 + 1
    return host_to_device(m, device)


def row_partitions(
    codes: torch.Tensor, card: int, lexicographic: bool = False, short_circuit: bool = False
) -> BinnedPartitions:
    """The partitions of the rows by every complement ``x^{-i}`` and by the whole matrix.

    A row's state in a partition is identified by two independent 64-bit hashes of its codes,
    ``sum_j m_j codes[:, j]`` with random odd multipliers (integer arithmetic wraps modulo
    ``2^64``); a complement's hash is the row's minus its column's term, so all ``N + 1``
    partitions cost one pass. Equal states have equal hashes; distinct states collide in both
    with probability about ``2^-118`` per pair. The number of states of each partition is
    counted on the device.

    With ``short_circuit`` (the exact estimator, on the CPU: the loss path stays in torch, with
    no host synchronisation), partitions whose rows are all distinct ("injective") are found
    without sorting them: once a prefix code (columns ``0..a-1``) is injective, so is every
    complement ``x^{-i}`` with ``i >= a`` (it contains the prefix), and once a suffix code
    (columns ``b..N-1``) is, so is every complement with ``i < b``. A few sorts of ``n``
    prefix and suffix hashes find ``a`` and ``b`` (a hash collision can only hide injectivity,
    never invent it); only the complements with ``b <= i < a`` are sorted. At ``n = 5000`` with
    30 bins the rows are distinct after a handful of columns, and no complement is sorted.

    Parameters
    ----------
    codes : torch.Tensor
        ``(n, N)`` non-negative integer bin codes.
    card : int
        An upper bound on the codes (``codes < card``).
    lexicographic : bool
        Group by both hashes (two sorts) instead of one hash checked by the other; used when
        the check flags a clash.
    short_circuit : bool
        Find the injective partitions from prefix and suffix codes first (CPU tensors only;
        a few numpy sorts and host reads).

    Returns
    -------
    BinnedPartitions
    """
    codes = codes.to(torch.long)
    n, n_feat = codes.shape
    dev = codes.device
    m = _multipliers(n_feat + 2, dev)
    per_col = codes.T[None, :, :] * m[:, :n_feat, None]  # (2, N, n)
    whole = per_col.sum(dim=1)  # (2, n)
    cards = torch.full((n_feat + 1,), n, dtype=torch.long, device=dev)
    idx = torch.arange(n_feat + 1, device=dev)  # every partition is counted by one sort
    if short_circuit and dev.type == "cpu" and n > 1:
        idx = torch.from_numpy(np.flatnonzero(~_injective_partitions(per_col[0].numpy())))
    parts = BinnedPartitions(
        codes, int(card), whole, per_col, m, cards, m[:, n_feat + 1],
        torch.zeros((), dtype=torch.bool, device=dev), lexicographic,
    )
    if idx.shape[0]:
        keys = parts.keys_of(idx)
        order, new, clash = _sorted_groups(keys.reshape(2, -1), lexicographic)
        owner = torch.div(order, n, rounding_mode="floor")  # the partition of each element
        counted = torch.zeros(idx.shape[0], dtype=torch.long, device=dev).index_add_(
            0, owner, new.long())
        parts.cards = cards.index_copy(0, idx, counted)
        parts.clash = clash
    return parts


def _all_distinct(h: np.ndarray) -> bool:
    s = np.sort(h)
    return bool((s[1:] != s[:-1]).all())


def _injective_partitions(per_col: np.ndarray) -> np.ndarray:
    """``(N + 1,)`` bool: the complements (then the whole matrix) whose rows are all distinct,
    as far as prefix and suffix codes show it (see :func:`row_partitions`).

    ``per_col`` ``(N, n)``: each column's term of one row hash. A ``True`` is certain (equal
    hashes of distinct rows can only make a distinct code look repeated); a ``False`` means
    "count it".
    """
    n_feat = per_col.shape[0]
    done = np.zeros(n_feat + 1, dtype=bool)
    prefix = np.cumsum(per_col, axis=0)  # prefix[k]: the hash of columns 0..k (wraps mod 2^64)
    whole = prefix[-1]
    if not _all_distinct(whole):
        return done  # no sub-code of a repeated row is distinct: count every partition

    def first(distinct: callable) -> int:
        """The smallest k in [0, N) with distinct(k); N when none (distinct(N - 1) holds)."""
        lo, hi = 0, n_feat - 1  # distinct(n_feat - 1) is the whole row: known true
        while lo < hi:
            mid = (lo + hi) // 2
            if distinct(mid):
                hi = mid
            else:
                lo = mid + 1
        return lo

    done[n_feat] = True
    a = first(lambda k: _all_distinct(prefix[k])) + 1  # columns 0..a-1 are injective
    # the suffix that starts at a covers every other complement; else search for the longest
    if a < n_feat and _all_distinct(whole - prefix[a - 1]):
        b = a
    else:  # suffix of length L (columns N-L..N-1): hash = whole - prefix[N-L-1]
        length = first(lambda k: _all_distinct(whole - prefix[n_feat - k - 2])
                       if k < n_feat - 1 else True) + 1
        b = n_feat - length
    i = np.arange(n_feat)
    done[:n_feat] = (i >= a) | (i < b)
    return done


def equal_width_codes(
    x: torch.Tensor, bins: int, lo: float | None = None, hi: float | None = None
) -> torch.Tensor:
    """``floor((x - lo) / (hi - lo) * bins)`` clipped to ``[0, bins)``, per column, in torch.

    ``lo``/``hi`` default to each column's min/max; a zero span gives bin 0. Columns whose span
    overflows float64 (values near ``±1.8e308``) are halved first, an exact operation, so their
    codes are the same as in exact arithmetic.
    """
    xd = x.detach().to(torch.float64)
    if lo is None or hi is None:
        lo_t, hi_t = xd.amin(dim=0), xd.amax(dim=0)
    else:
        xd = xd.clamp(lo, hi)  # values outside the range go to the edge bins
        lo_t = torch.full((xd.shape[1],), float(lo), dtype=torch.float64, device=xd.device)
        hi_t = torch.full_like(lo_t, float(hi))
    half = torch.where(torch.isfinite(hi_t - lo_t), 1.0, 0.5)
    lo_t, hi_t = lo_t * half, hi_t * half
    span = hi_t - lo_t
    safe = torch.where(span > 0, span, torch.ones_like(span))
    # floor((x - lo) / span * bins) in place (one temporary); a zero span has x == lo: bin 0
    t = xd * half
    return t.sub_(lo_t).div_(safe).mul_(bins).floor_().clamp_(0, bins - 1).to(torch.long)


@dataclass
class BinnedPartitions:
    """Hard partitions of the rows induced by binned features (the data side of binned GIB).

    Attributes
    ----------
    single : torch.Tensor
        ``(n, N)`` long bin code of every column.
    single_card : int
        Upper bound on the bin codes.
    whole_hash : torch.Tensor
        ``(2, n)`` two hashes of every row's state in the whole matrix.
    column_hash : torch.Tensor
        ``(2, N, n)`` each column's term of those hashes (a complement's hash is the whole's
        minus its column's; see :meth:`keys_of`).
    multipliers : torch.Tensor
        ``(2, N + 2)`` the hash multipliers.
    cards : torch.Tensor
        ``(N + 1,)`` number of states of every complement and of the whole matrix.
    hard_multiplier : torch.Tensor
        ``(2,)`` hash multipliers of a target code joined to a state.
    clash : torch.Tensor
        0-d bool: the one-hash grouping met two states with equal first hashes (then
        :func:`partition_terms` regroups lexicographically).
    lexicographic : bool
        Whether the states were grouped by both hashes.
    """

    single: torch.Tensor
    single_card: int
    whole_hash: torch.Tensor
    column_hash: torch.Tensor
    multipliers: torch.Tensor
    cards: torch.Tensor
    hard_multiplier: torch.Tensor
    clash: torch.Tensor
    lexicographic: bool = False

    def keys_of(self, idx: torch.Tensor) -> torch.Tensor:
        """``(2, P, n)`` the two hashes of every row's state in partitions ``idx`` (``i < N``:
        the complement ``x^{-i}``; ``N``: the whole matrix); the partition's index is part of
        the hash, so states of different partitions differ."""
        n_feat = self.column_hash.shape[1]
        col = self.column_hash.index_select(1, idx.clamp_max(n_feat - 1))
        col = torch.where((idx < n_feat)[None, :, None], col, torch.zeros_like(col))
        tag = idx[None, :, None] * self.multipliers[:, n_feat, None, None]
        return self.whole_hash[:, None, :] - col + tag

    def states(self) -> torch.Tensor:
        """``(N + 1, n)`` long state ids of every complement and the whole matrix.

        Two rows share an id in a partition exactly when they share its state; ids lie in
        ``[0, (N + 1) n)`` and are unique across partitions.
        """
        n_parts = self.column_hash.shape[1] + 1
        keys = self.keys_of(torch.arange(n_parts, device=self.whole_hash.device))
        codes, _ = _group_codes(keys.reshape(2, -1), lexicographic=True)
        return codes.view(n_parts, -1)

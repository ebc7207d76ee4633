"""Plug-in information measures on integer codes, shared by every estimator.

All functions take dense integer codes (``0 .. k-1``) and optional weights that sum to one, and
return values in bits. Nothing here loops over samples in Python.
"""

from __future__ import annotations

import numpy as np
import torch

_LN2 = float(np.log(2.0))

#: Probability mass below which a cell (or a soft table entry) is treated as empty. Masses sum to
#: one, so such a cell changes any term by less than ``1e-12 * log2(n)`` bits; dividing by it
#: instead would overflow the backward pass (``d(w / m)/dm = -w / m**2``) and turn the gradient
#: into NaN through ``inf * 0``.
MIN_MASS = 1e-12

__all__ = [
    "MIN_MASS",
    "entropy_bits",
    "combine",
    "dense",
    "plugin_entropy",
    "plugin_mi",
    "row_codes",
]


def entropy_bits(p: torch.Tensor, dim: tuple[int, ...] | int | None = None) -> torch.Tensor:
    """Plug-in entropy (bits) of non-negative masses in torch (zeros allowed, finite gradients).

    ``-sum p log2 p`` over ``dim`` (all entries by default); the masses are not renormalised.
    ``log(1) = 0`` where ``p = 0``, so zeros contribute 0 and get a zero gradient.
    """
    terms = p * torch.log(torch.where(p > 0, p, torch.ones((), dtype=p.dtype, device=p.device)))
    total = terms.sum() if dim is None else terms.sum(dim=dim)
    return -total / _LN2


def dense(codes: np.ndarray) -> tuple[np.ndarray, int]:
    """Relabel arbitrary codes to ``0 .. k-1`` in sorted order; return the codes and ``k``.

    Non-negative integer codes with a small range are relabelled through a lookup table (no
    sort); anything else goes through ``np.unique``.
    """
    codes = np.asarray(codes).reshape(-1)
    if codes.size and codes.dtype.kind in "iu":
        lo, hi = int(codes.min()), int(codes.max())
        if lo >= 0 and hi < max(4 * codes.size, 4096):
            occupied = np.bincount(codes, minlength=hi + 1) > 0
            lut = np.cumsum(occupied) - 1
            return lut[codes].astype(np.int64, copy=False), int(lut[-1] + 1)
    uniq, inv = np.unique(codes, return_inverse=True)
    return inv.reshape(-1).astype(np.int64), int(uniq.shape[0])


def combine(a: np.ndarray, ka: int, b: np.ndarray, kb: int) -> tuple[np.ndarray, int]:
    """Dense code of the pair ``(a, b)`` (a joint state per row)."""
    if ka == 1:
        return b, kb
    if kb == 1:
        return a, ka
    return dense(a * kb + b)


def _compact_columns(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map every column to ``0 .. card-1`` without collisions (negative or sparse symbols too).

    A column whose range fits in ``n`` values is shifted by its minimum; a wider one is
    dense-coded, so that the mixed-radix product in :func:`row_codes` never sees a negative digit
    or a cardinality larger than the number of rows.
    """
    n = codes.shape[0]
    lo, hi = codes.min(axis=0), codes.max(axis=0)
    out = codes - lo
    cards = (hi - lo + 1).astype(np.int64)
    for j in np.flatnonzero(cards > n):
        out[:, j], cards[j] = dense(codes[:, j])
    return out, cards


def row_codes(codes: np.ndarray, cards: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """Joint row identity of an integer matrix ``(n, d)``: one dense code per distinct row.

    Columns are first made collision-free digits (:func:`_compact_columns`: negative or sparse
    symbols are fine), then combined in mixed radix while the product stays inside int64, then
    densified.
    Once the rows are all distinct, later columns cannot split them further and are skipped (wide
    layers become injective after a few columns).
    """
    n, d = codes.shape
    if d == 1:
        return dense(codes[:, 0])
    if cards is None:
        codes, cards = _compact_columns(codes)
    out = np.zeros(n, dtype=np.int64)
    k = 1
    for j in range(d):
        cj = int(cards[j])
        if k * cj >= 2**62:
            out, k = dense(out)
            if k == n:
                return out, k
        out = out * cj + codes[:, j]
        k *= cj
    return dense(out)


def _h_from_counts(p: np.ndarray) -> float:
    p = p[p > 0]
    if p.size == 0:
        return 0.0
    p = p / p.sum()
    return float(-(p * np.log2(p)).sum())


def plugin_entropy(
    codes: np.ndarray, weights: np.ndarray | None = None, k: int | None = None
) -> float:
    """Plug-in entropy (bits) of dense codes under the (weighted) empirical measure."""
    counts = np.bincount(codes, weights=weights, minlength=k or 0)
    return _h_from_counts(counts.astype(np.float64))


def plugin_mi(
    a: np.ndarray,
    ka: int,
    b: np.ndarray,
    kb: int,
    weights: np.ndarray | None = None,
) -> float:
    """Plug-in mutual information (bits) between two dense code vectors."""
    h_a = plugin_entropy(a, weights, ka)
    h_b = plugin_entropy(b, weights, kb)
    n = a.shape[0]
    if ka * kb <= 4 * n:
        joint = np.bincount(a * kb + b, weights=weights, minlength=ka * kb)
    else:  # sparse table: only the occupied cells
        cells, _ = dense(a * kb + b)
        joint = np.bincount(cells, weights=weights)
    h_ab = _h_from_counts(joint.astype(np.float64))
    return max(h_a + h_b - h_ab, 0.0)


def host_to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Copy a small host tensor to ``device`` without making the host wait.

    A copy from pageable host memory to a GPU synchronises; from pinned memory it is
    asynchronous (the host tensor must stay alive until the copy is done, which the caching
    allocator's stream ordering guarantees for tensors created here).
    """
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)

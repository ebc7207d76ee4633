"""Gaussian entropies of many covariance matrices at once, in torch (differentiable).

The Gaussian-copula GIB terms, computed once from the weighted sums of the Q cells
(:class:`MomentTerms`, with a written backward): the exact estimator (hard cells, sums of the
rows of each class, no gradient) and the default loss (soft cells, this batch's sums plus the
remembered ones) call it. The batch-only loss (``memory=0``) computes the same terms from the
rows (:func:`class_conditional_terms`), where cells of at most ``d + 1`` rows take the
``r x r`` Woodbury path instead of a ``d x d`` factorisation; ``tests/test_memory_exact.py``
holds the two to 1e-12.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from ._discrete import MIN_MASS, entropy_bits, host_to_device

__all__ = [
    "MIN_MASS",
    "covariance_from_sums",
    "fill_constant_columns",
    "gaussian_entropies",
    "informative_columns",
    "shrunk_entropies_from_rows",
    "single_thread",
    "terms_from_moments",
    "unbiasing_factor",
    "weighted_covariances",
]


@contextmanager
def single_thread() -> Iterator[None]:
    """Run torch ops on one intra-op thread (restored afterwards; process-wide meanwhile).

    Used only where asked for (``GaussianCopulaEstimator(limit_threads=True)``).

    The batched factorisations here are of small matrices; on a CPU, torch's thread pool costs more
    than it gains on them and competes with numpy's BLAS threads (measured: exact GCMI ``gib()`` at
    n = 5000, N = 50 takes ~18 ms with 2 torch threads, ~9.5 ms with 1).
    """
    old = torch.get_num_threads()
    if old == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


_LN2 = math.log(2.0)
_CONST = 0.5 * (math.log(2 * math.pi) + 1.0)


def weighted_covariances(g: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted covariances of ``g`` ``(n, d)`` under each weight column of ``w`` ``(n, C)``.

    :func:`covariance_from_sums` of each column's sums (unbiased with the effective sample size
    ``n_eff = (sum w)^2 / sum w^2``). Columns must have a mass above :data:`MIN_MASS` (callers
    drop lighter cells).

    Returns
    -------
    covs : torch.Tensor
        ``(C, d, d)``.
    n_effs : torch.Tensor
        ``(C,)``.
    """
    # every column's sum w g g^T as one batched GEMM, no (n, C, d) centred copy (copula-
    # normalised data have unit scale, so the cancellation costs nothing measurable in float64)
    second = (w.T.unsqueeze(-1) * g.unsqueeze(0)).transpose(1, 2) @ g  # (C, d, d)
    return covariance_from_sums(w.sum(dim=0), w.T @ g, second, (w * w).sum(dim=0))


def unbiasing_factor(n_eff: torch.Tensor) -> torch.Tensor:
    """``n_eff / (n_eff - 1)``: the factor that makes a weighted covariance unbiased (1 for
    ``n_eff <= 1``)."""
    return torch.where(n_eff > 1, n_eff / (n_eff - 1).clamp_min(1e-12), torch.ones_like(n_eff))


def covariance_from_sums(
    s0: torch.Tensor, s1: torch.Tensor, s2: torch.Tensor, w2: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Unbiased weighted covariances and effective sizes from weighted sums: the one formula.

    With ``s0 = sum w``, ``s1 = sum w g``, ``s2 = sum w g g^T`` and ``w2 = sum w^2`` over the rows
    (any leading batch shape), the covariance is ``(s2 / s0 - mean mean^T) * n_eff / (n_eff - 1)``
    with ``n_eff = s0^2 / w2`` (Ince et al.'s ``n - 1`` for uniform weights). The sums can be
    those of one batch or accumulated over many (:class:`CellMoments`).
    """
    cov, _ = centred_moments(s0, s1, s2)
    n_eff = s0 * s0 / w2
    return cov * unbiasing_factor(n_eff)[..., None, None], n_eff


def centred_moments(
    s0: torch.Tensor, s1: torch.Tensor, s2: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``s2 / s0 - mean mean^T`` and ``mean = s1 / s0``: the weighted second moment about the
    mean of :func:`covariance_from_sums`, before its unbiasing factor."""
    mean = s1 / s0.unsqueeze(-1)
    return s2 / s0[..., None, None] - mean.unsqueeze(-1) * mean.unsqueeze(-2), mean


def _bias_parts(n_eff: torch.Tensor, d: int, d_eff: torch.Tensor, slopes: bool) -> torch.Tensor:
    """Ince et al.'s biases (nats) of the whole, single and complement entropies, ``(M, 3)``,
    for effective sizes ``n_eff`` ``(M,)`` and ``d_eff`` (0-d) kept columns; with ``slopes``
    their derivatives in ``n_eff`` (trigamma in place of digamma): the analytic corrections
    ``sum_{k<=m} psi((n - k) / 2) / 2 + m (ln 2 - ln(n - 1)) / 2`` of the ``m``-variate
    entropies, ``m = d_eff, 1, d_eff - 1``, from one digamma pass (partial sums of one row)."""
    k = torch.arange(1, d + 1, dtype=n_eff.dtype, device=n_eff.device)
    upto = torch.stack([k <= d_eff, k == 1, k <= d_eff - 1], dim=-1).to(n_eff.dtype)  # (d, 3)
    arg = torch.where(k <= d_eff, (n_eff[:, None] - k) / 2.0, 1.0)  # (M, d)
    if slopes:  # d/dn of psi((n - k) / 2) / 2 and of (ln 2 - ln(n - 1)) / 2
        psi = torch.special.polygamma(1, arg) / 4.0
        dterm = -0.5 / (n_eff - 1.0)
    else:
        psi = torch.special.digamma(arg) / 2.0
        dterm = (_LN2 - torch.log(n_eff - 1.0)) / 2.0
    m = torch.stack([d_eff, torch.ones_like(d_eff), d_eff - 1.0])  # (3,)
    return m * dterm[:, None] + psi @ upto


class LogdetPrecisionDiagonal(torch.autograd.Function):
    """``(log det S, log diag(S^{-1}))`` of SPD matrices ``(C, d, d)``, with a written backward.

    Forward: one batched Cholesky and one ``cholesky_inverse``. Backward, from
    ``d log det S = tr(P dS)`` and ``d log P_ii = -(P dS P)_ii / P_ii`` with ``P = S^{-1}``:
    ``grad S = g_whole P - P diag(g_diag / P_ii) P``, two batched matrix products, where
    autograd's graph through the Cholesky and a triangular solve would be a chain of small
    kernels (the cost of the loss on a GPU).
    """

    @staticmethod
    def forward(ctx: Any, covs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        chol = torch.linalg.cholesky_ex(covs).L  # _ex: no host check of the factorisation
        logdet = 2.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(dim=-1)
        prec = torch.cholesky_inverse(chol)
        prec_diag = torch.diagonal(prec, dim1=-2, dim2=-1)
        ctx.save_for_backward(prec, prec_diag)
        return logdet, torch.log(prec_diag)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(
        ctx: Any, g_logdet: torch.Tensor, g_log_diag: torch.Tensor
    ) -> torch.Tensor:
        prec, prec_diag = ctx.saved_tensors
        grad = g_logdet[..., None, None] * prec
        return grad - prec @ ((g_log_diag / prec_diag).unsqueeze(-1) * prec)


def gaussian_entropies(
    covs: torch.Tensor,
    n_effs: torch.Tensor,
    *,
    shrinkage: float = 0.1,
    ridge: float = 1e-6,
    bias_correct: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Entropies (bits) of Gaussians with covariances ``(C, d, d)``, their columns and complements.

    A covariance whose effective sample size is at most ``d + 1`` is shrunk towards
    ``max(tr(S)/d, 1) * I`` (intensity ``shrinkage``) and gets no bias correction; every
    covariance gets ``ridge`` on its diagonal. The complement entropies use
    ``log det S_{-i,-i} = log det S + log (S^{-1})_{ii}``: one batched Cholesky and one batched
    triangular inverse serve all of them.

    Returns
    -------
    h_whole : torch.Tensor
        ``(C,)``.
    h_single : torch.Tensor
        ``(C, d)``: entropy of each single column.
    h_comp : torch.Tensor
        ``(C, d)``: entropy of all columns but one (zeros when ``d == 1``).
    shrunk : torch.Tensor
        ``(C,)`` bool.
    """
    n_c, d, _ = covs.shape
    eye = torch.eye(d, dtype=covs.dtype, device=covs.device)
    # The tolerance keeps the decision stable when n_eff is an integer up to rounding (uniform
    # weights), whichever way n_eff was computed.
    shrunk = n_effs.detach() <= d + 1 + 1e-6
    # computed for every cell and selected (no host synchronisation to ask whether any is shrunk)
    trace = torch.diagonal(covs, dim1=1, dim2=2).sum(dim=1)
    target = torch.clamp_min(trace / d, 1.0)
    shrunk_covs = (1 - shrinkage) * covs + shrinkage * target[:, None, None] * eye
    covs = torch.where(shrunk[:, None, None], shrunk_covs, covs)
    covs = covs + ridge * eye
    logdet, log_inv_diag = LogdetPrecisionDiagonal.apply(covs)
    h_whole = 0.5 * logdet + d * _CONST
    h_single = 0.5 * torch.log(torch.diagonal(covs, dim1=1, dim2=2)) + _CONST
    h_comp = 0.5 * (logdet[:, None] + log_inv_diag) + (d - 1) * _CONST
    if bias_correct:
        ok = (~shrunk) & (n_effs.detach() > d)
        safe = torch.where(ok, n_effs, torch.full_like(n_effs, float(d + 2)))
        d_t = torch.tensor(float(d), dtype=n_effs.dtype, device=n_effs.device)
        bias = _bias_parts(safe, d, d_t, slopes=False) * ok.to(n_effs.dtype)[:, None]
        h_whole = h_whole - bias[:, 0]
        h_single = h_single - bias[:, 1:2]
        h_comp = h_comp - bias[:, 2:3]
    if d == 1:
        h_comp = torch.zeros_like(h_comp)
    return h_whole / _LN2, h_single / _LN2, h_comp / _LN2, shrunk


def _sqrt0(x: torch.Tensor) -> torch.Tensor:
    """``sqrt`` with a zero (not infinite) gradient at 0."""
    pos = x > 0
    return torch.where(
        pos, torch.sqrt(torch.where(pos, x, torch.ones_like(x))), torch.zeros_like(x)
    )


def shrunk_entropies_from_rows(
    g: torch.Tensor,
    w: torch.Tensor,
    *,
    shrinkage: float = 0.1,
    ridge: float = 1e-6,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`gaussian_entropies` of shrunk weighted covariances, computed from their ``r`` rows.

    For ``r <= d + 1`` rows every weighted covariance has ``n_eff <= d + 1`` and is shrunk:
    ``Σ = a I + Uᵀ U`` with ``a = shrinkage * target + ridge`` and ``U`` the ``r × d`` scaled,
    centred rows. The determinant lemma and Woodbury's identity give ``log det Σ`` and
    ``diag(Σ^{-1})`` from ``r × r`` systems, so ``C`` cells cost ``O(C r^2 d)`` instead of
    ``O(C d^3)``; the values equal those of the ``d × d`` path. Rows of zero weight contribute
    nothing, so groups of different sizes can be padded to one ``r`` and batched.

    Parameters
    ----------
    g : torch.Tensor
        ``(..., r, d)`` rows.
    w : torch.Tensor
        ``(..., r, C)`` non-negative weights, one column per covariance. Columns whose
        total is at most :data:`MIN_MASS` give meaningless (finite) values; callers drop them.

    Returns
    -------
    h_whole, h_single, h_comp : torch.Tensor
        ``(..., C)``, ``(..., C, d)``, ``(..., C, d)`` in bits.
    """
    r, d = g.shape[-2:]
    mass = w.sum(dim=-2, keepdim=True)
    # Columns at or below MIN_MASS are dropped by the callers; give them zero weights (not
    # w / tiny) so that their backward is finite too.
    heavy = mass > MIN_MASS
    wn = torch.where(heavy, w / torch.where(heavy, mass, torch.ones_like(mass)), 0.0 * w)
    sq = (wn * wn).sum(dim=-2)
    factor = unbiasing_factor(1.0 / torch.where(sq > 0, sq, torch.ones_like(sq)))
    mean = wn.transpose(-1, -2) @ g  # (..., C, d)
    centred = g.unsqueeze(-3) - mean.unsqueeze(-2)  # (..., C, r, d)
    scale = _sqrt0(wn.transpose(-1, -2) * factor.unsqueeze(-1))  # (..., C, r)
    scaled = centred * scale.unsqueeze(-1)  # rows of f * S
    trace = (scaled * scaled).sum(dim=(-1, -2))
    a = shrinkage * torch.clamp_min(trace / d, 1.0) + ridge  # (..., C)
    u = scaled * math.sqrt(1.0 - shrinkage)  # Σ = a I + uᵀ u
    eye_r = torch.eye(r, dtype=g.dtype, device=g.device)
    small = a[..., None, None] * eye_r + u @ u.transpose(-1, -2)  # (..., C, r, r)
    chol = torch.linalg.cholesky_ex(small).L
    logdet_small = 2.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(dim=-1)
    logdet = (d - r) * torch.log(a) + logdet_small  # log det(a I_d + uᵀu)
    v = torch.linalg.solve_triangular(chol, u, upper=False)  # (..., C, r, d)
    inv_diag = (1.0 - (v * v).sum(dim=-2)) / a[..., None]
    diag = a[..., None] + (u * u).sum(dim=-2)
    h_whole = 0.5 * logdet + d * _CONST
    h_single = 0.5 * torch.log(diag) + _CONST
    h_comp = 0.5 * (logdet[..., None] + torch.log(inv_diag)) + (d - 1) * _CONST
    if d == 1:
        h_comp = torch.zeros_like(h_comp)
    return h_whole / _LN2, h_single / _LN2, h_comp / _LN2


@dataclass
class ClassConditionalTerms:
    """``I(G; Q)``, ``I(G^i; Q)``, ``I(G^{-i}; Q)`` (bits) of Gaussian cells, and diagnostics."""

    whole: torch.Tensor
    single: torch.Tensor
    complement: torch.Tensor
    h_q: torch.Tensor
    n_shrunk: torch.Tensor  # 0-d long: read it only when you need it (a host synchronisation)


#: Elements of the padded (codes, Z codes, rows, columns) tensor up to which the cell moments of
#: all codes are computed in one batched product instead of one product per code.
_BATCH_BUDGET = 2**24


def _padded(groups: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Row indices of the groups padded to one length ``(G, r)``, and the mask of real rows."""
    idx = torch.nn.utils.rnn.pad_sequence(groups, batch_first=True)
    sizes = host_to_device(torch.tensor([g.shape[0] for g in groups]), idx.device)
    valid = torch.arange(idx.shape[1], device=idx.device)[None, :] < sizes[:, None]
    return idx, valid


def _grouped_covariances(
    g: torch.Tensor, mass: torch.Tensor, groups: list[torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`weighted_covariances` of every non-empty cell ``(h, c)`` of the given row groups.

    Returns the covariances ``(C, d, d)``, effective sizes ``(C,)`` and cell masses ``(C,)`` of
    every cell, code by code; a cell lighter than :data:`MIN_MASS` gets mass 0 and the (finite)
    moments of its rows under uniform weights, so no shape depends on the data. Groups are padded
    with zero-weight rows and batched when the padded tensor fits :data:`_BATCH_BUDGET` (many
    small codes: the exact estimator's Q cells), else computed one code at a time.
    """
    d, k = g.shape[1], mass.shape[1]
    r_max = max(rows.shape[0] for rows in groups)
    if len(groups) * k * r_max * d > _BATCH_BUDGET:
        covs, n_effs, masses = [], [], []
        for rows_t in groups:
            w_h = mass[rows_t]
            m_h = w_h.sum(dim=0)
            occ = m_h.detach() > MIN_MASS
            w_safe = torch.where(occ[None, :], w_h, torch.ones_like(w_h))
            cov_h, neff_h = weighted_covariances(g[rows_t], w_safe)
            covs.append(cov_h)
            n_effs.append(neff_h)
            masses.append(torch.where(occ, m_h, 0.0 * m_h))
        return torch.cat(covs), torch.cat(n_effs), torch.cat(masses)
    idx_t, valid = _padded(groups)
    w = mass[idx_t] * valid.to(mass.dtype).unsqueeze(-1)
    m = w.sum(dim=1)  # (G, K)
    occ = m.detach() > MIN_MASS
    w = torch.where(occ.unsqueeze(1), w, valid.to(w.dtype).unsqueeze(-1))  # empty: uniform, finite
    gp = g[idx_t]  # (G, r, d)
    wt = w.transpose(1, 2)  # (G, K, r)
    second = (wt.unsqueeze(-1) * gp.unsqueeze(1)).transpose(-1, -2) @ gp.unsqueeze(1)
    covs, n_eff = covariance_from_sums(wt.sum(dim=-1), wt @ gp, second, (wt * wt).sum(dim=-1))
    eye = torch.eye(d, dtype=covs.dtype, device=covs.device)
    covs = torch.where(occ[..., None, None], covs, eye)  # empty cells: a unit Gaussian, mass 0
    n_eff = torch.where(occ, n_eff, torch.full_like(n_eff, 2.0 * d + 10.0))
    m = torch.where(occ, m, 0.0 * m)
    return covs.reshape(-1, d, d), n_eff.reshape(-1), m.reshape(-1)


def class_conditional_terms(
    g: torch.Tensor,
    hard: torch.Tensor,
    mass: torch.Tensor,
    *,
    shrinkage: float = 0.1,
    ridge: float = 1e-6,
    bias_correct: bool = True,
    n_hard: int | None = None,
) -> ClassConditionalTerms:
    """Gaussian ``I(G; Q) = H(G) - sum_q p(q) H(G | q)`` for every column and complement.

    The terms of :class:`MomentTerms`, computed from the rows (the batch-only loss: at batch
    sizes with a few rows per cell this is cheaper than ``d x d`` factorisations). A Q cell is
    ``(h, c)``: sample ``j`` sits in the cells ``(hard[j], c)`` with mass ``mass[j, c]``; the
    differentiable surrogate calls it with the target's codes and soft memberships over Z codes
    (hard cells and one column of sample weights give the exact estimator's value).

    Cell ``(h, c)`` only sees the rows of target code ``h``, so the moments are computed per
    target code (``n K d^2``, not ``n K^2 d^2``). A cell with effective size at most ``d + 1`` is
    shrunk (see :func:`gaussian_entropies`); with at most ``d + 1`` rows every cell of a code is,
    and the ``r x r`` (Woodbury) path gives the same entropies for ``O(r^2 d)``. Cells lighter
    than :data:`MIN_MASS` are empty. Each term is clipped to ``[0, H(Q)]``, the exact bounds,
    which a Gaussian model of non-Gaussian cells can overshoot.

    Parameters
    ----------
    g : torch.Tensor
        ``(n, d)`` copula-normalised, non-constant columns.
    hard : torch.Tensor
        ``(n,)`` long codes.
    mass : torch.Tensor
        ``(n, K)`` non-negative masses summing to one (may carry gradient).
    shrinkage, ridge, bias_correct
        As in :func:`gaussian_entropies`.
    n_hard : int, optional
        An upper bound on the codes; when given, the code sizes are read in one host
        synchronisation (else ``bincount`` needs its own to size its output).

    Returns
    -------
    ClassConditionalTerms
        ``whole`` scalar, ``single`` and ``complement`` ``(d,)`` (complements are zero when
        ``d == 1``), ``h_q`` and the number of shrunk cells.
    """
    n, d = g.shape
    dev, dt = mass.device, mass.dtype
    opts = {"shrinkage": shrinkage, "ridge": ridge, "bias_correct": bias_correct}
    cov, n_eff = weighted_covariances(g, mass.sum(dim=1, keepdim=True))
    h_all = gaussian_entropies(cov, n_eff, **opts)
    parts: list[tuple[torch.Tensor, ...]] = []
    n_shrunk = torch.zeros((), dtype=torch.long, device=dev)
    # The rows of each target code, from one sort and one synchronisation (the code sizes).
    hard = hard.to(dev)
    order = torch.argsort(hard, stable=True)
    if n_hard is None:
        sizes = torch.bincount(hard).tolist()
    else:
        ones = torch.ones_like(hard)
        sizes = torch.zeros(n_hard, dtype=torch.long, device=dev).index_add_(0, hard, ones).tolist()
    groups = [rows for rows in torch.split(order, sizes) if rows.shape[0] > 0]
    small = [rows for rows in groups if rows.shape[0] <= d + 1]
    if small:  # one batched call, groups padded with zero-weight rows
        idx_t, valid = _padded(small)
        w_pad = mass[idx_t] * valid.to(dt).unsqueeze(-1)
        m = w_pad.sum(dim=1)  # (groups, K)
        ent = shrunk_entropies_from_rows(g[idx_t], w_pad, shrinkage=shrinkage, ridge=ridge)
        occ = m.detach() > MIN_MASS  # empty cells stay, with mass 0 (finite entropies)
        n_shrunk = n_shrunk + occ.sum()
        parts.append(
            (
                ent[0].reshape(-1),
                ent[1].reshape(-1, d),
                ent[2].reshape(-1, d),
                torch.where(occ, m, 0.0 * m).reshape(-1),
            )
        )
    large = [rows for rows in groups if rows.shape[0] > d + 1]
    if large:  # one batched factorisation for the cells of every larger code
        covs, n_effs, masses = _grouped_covariances(g, mass, large)
        hw, hs, hc, shrunk = gaussian_entropies(covs, n_effs, **opts)
        n_shrunk = n_shrunk + (shrunk & (masses.detach() > 0)).sum()
        parts.append((hw, hs, hc, masses))
    hw, hs, hc, p_q = (torch.cat(t) for t in zip(*parts, strict=True))
    return _assemble(h_all, (hw, hs, hc), p_q, d, n_shrunk)


def fill_constant_columns(
    whole: torch.Tensor, single: torch.Tensor, complement: torch.Tensor, keep: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The terms of every column from those computed with the constant columns dropped.

    ``single`` and ``complement`` are ``(d,)`` with the kept columns' terms in place (the dropped
    entries are ignored); ``keep`` is ``(d,)`` bool, the columns that are not constant. A
    constant column carries no information: its single term is 0 and its complement holds every
    informative column, so its complement term is the whole's; with one kept column, that
    column's complement is empty (0); with none, there is no information at all; with one column
    in all, complements are 0. The one place where the exact Gaussian-copula estimator, the batch
    loss and the memory loss fill what they dropped (no host synchronisation).
    """
    n_keep = keep.sum()
    whole = torch.where(n_keep > 0, whole, torch.zeros_like(whole))
    single = torch.where(keep, single, torch.zeros_like(single))
    kept_comp = torch.where(n_keep > 1, complement, torch.zeros_like(complement))
    comp = torch.where(keep, kept_comp, whole)
    if keep.shape[0] == 1:
        comp = torch.zeros_like(comp)
    return whole, single, comp


def informative_columns(g: torch.Tensor) -> torch.Tensor:
    """``(d,)`` bool: the columns of copula-normalised rows ``g`` that are not constant.

    The copula transform maps a constant column to zeros, so a column is informative when any of
    its entries is non-zero; the memory's test (``sum w g^2 > 0`` over every row summed so far)
    is the same criterion accumulated.
    """
    return (g != 0).any(dim=0)


def _assemble(
    h_all: tuple[torch.Tensor, ...],
    h_cells: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    p_q: torch.Tensor,
    d: int,
    n_shrunk: torch.Tensor,
) -> ClassConditionalTerms:
    """``I = H(G) - sum_q p(q) H(G | q)`` per term, clipped to ``[0, H(Q)]``."""
    hw, hs, hc = h_cells
    h_q = entropy_bits(p_q / p_q.sum())
    whole = torch.minimum(h_all[0][0] - p_q @ hw, h_q).clamp_min(0.0)
    single = torch.minimum(h_all[1][0] - p_q @ hs, h_q).clamp_min(0.0)
    comp = torch.minimum(h_all[2][0] - p_q @ hc, h_q).clamp_min(0.0)
    if d == 1:
        comp = torch.zeros_like(comp)
    return ClassConditionalTerms(whole, single, comp, h_q, n_shrunk)


@dataclass
class CellMoments:
    """Weighted sums of every Q cell ``(h, c)`` (cell id ``h * K + c``): the statistics of a
    Gaussian cell, which add up across batches.

    Attributes
    ----------
    s0, w2 : torch.Tensor
        ``(C,)`` ``sum w`` and ``sum w^2``.
    s1 : torch.Tensor
        ``(C, d)`` ``sum w g``.
    s2 : torch.Tensor
        ``(C, d, d)`` ``sum w g g^T``.
    r2 : torch.Tensor
        Scalar ``sum_j (sum_c w_jc)^2`` over rows (the effective size of the whole matrix).
    """

    s0: torch.Tensor
    s1: torch.Tensor
    s2: torch.Tensor
    w2: torch.Tensor
    r2: torch.Tensor

    def packed(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The layout :class:`MomentTerms` reads: ``(C + 1, 1 + d + d^2)`` sums
        ``[s0, s1, s2]`` of every cell and, last, of the whole matrix (their sum), and
        ``(C + 1,)`` ``[w2, r2]`` (no copy when the sums came from :meth:`from_packed`)."""
        cached = self.__dict__.get("_packed")
        if cached is not None:
            return cached
        c = self.s0.shape[0]
        t = torch.cat([self.s0[:, None], self.s1, self.s2.reshape(c, -1)], dim=1)
        return torch.cat([t, t.sum(dim=0, keepdim=True)]), torch.cat([self.w2, self.r2[None]])

    @classmethod
    def from_packed(cls, t: torch.Tensor, w2: torch.Tensor, d: int) -> CellMoments:
        """The sums of :meth:`packed`'s layout, as views of ``t`` and ``w2``."""
        c = t.shape[0] - 1
        cells = t[:c]
        moments = cls(cells[:, 0], cells[:, 1 : 1 + d], cells[:, 1 + d :].view(c, d, d),
                      w2[:c], w2[c])
        moments.__dict__["_packed"] = (t, w2)
        return moments

    def astuple(self) -> tuple[torch.Tensor, ...]:
        return self.s0, self.s1, self.s2, self.w2, self.r2

    def to(self, dtype: torch.dtype) -> CellMoments:
        """The same sums in ``dtype`` (this object when they are already)."""
        if self.s0.dtype == dtype:
            return self
        return CellMoments(*(t.to(dtype) for t in self.astuple()))


def terms_from_moments(
    moments: CellMoments,
    *,
    shrinkage: float = 0.1,
    ridge: float = 1e-6,
    bias_correct: bool = True,
) -> ClassConditionalTerms:
    """:func:`class_conditional_terms` from accumulated cell sums (e.g. a memory of batches).

    Cells lighter than :data:`MIN_MASS` (relative to the total) are empty; the whole matrix's
    moments are the sums over all cells. A column that is zero in every row summed so far (a
    constant column after the copula transform) is dropped as the exact estimator drops it
    (no host synchronisation, no shape that depends on it). Computed by :class:`MomentTerms`.
    """
    t, w2 = moments.packed()
    none = t.new_zeros(0)
    whole, single, comp, h_q, n_shrunk, _ = MomentTerms.apply(
        t,
        w2,
        none,
        none,
        torch.ones((), dtype=t.dtype, device=t.device),
        moments.s1.shape[1],
        shrinkage,
        ridge,
        bias_correct,
    )
    return ClassConditionalTerms(whole, single, comp, h_q, n_shrunk)


# --- the memory path: cell sums -> terms in a few batched operations, with a written backward ---


def _inner(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``sum_ij a_kij b_kij`` for each ``k`` of two ``(M, d, d)`` stacks, with no temporary."""
    return torch.linalg.vecdot(a.flatten(1), b.flatten(1))


def _occupied(
    s0: torch.Tensor, s1: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cells above :data:`MIN_MASS` of the whole (the last row), their masses with the empty
    ones' set to 1 (a unit Gaussian of ample size that weighs nothing), and the means (0 for
    empty cells)."""
    occ = s0 / s0[-1] > MIN_MASS  # the whole row reads 1
    s0e = torch.where(occ, s0, 1.0)
    return occ, s0e, s1 * (occ.to(s0.dtype) / s0e)[:, None]


def _cell_model(
    s0: torch.Tensor,
    w2: torch.Tensor,
    mom_diag: torch.Tensor,
    keepf: torch.Tensor,
    d_eff: torch.Tensor,
    occ: torch.Tensor,
    shrinkage: float,
    ridge: float,
) -> dict[str, torch.Tensor]:
    """What every Gaussian cell ``(M,)`` needs besides its covariance's off-diagonal: effective
    size, unbiasing factor, the shrinkage decision, ``Sigma = a * mom + diag(b keep + 1 - keep)``,
    the diagonal of ``Sigma``, and which cells get the bias correction (``ok``, with ``safe``
    effective sizes for the others) — :func:`gaussian_entropies`' rules, written once for the
    terms, their backward and their shuffled null."""
    d = mom_diag.shape[-1]
    n_eff = torch.where(occ, s0 * s0 / torch.where(occ, w2, 1.0), 2.0 * d + 10.0)
    f = unbiasing_factor(n_eff)
    shrunk = n_eff <= d_eff + 1 + 1e-6
    raw_target = mom_diag.sum(dim=-1) * f / d_eff.clamp_min(1.0)  # tr(cov) / d
    a = torch.where(shrunk, (1.0 - shrinkage) * f, f)
    b = torch.where(shrunk, shrinkage * raw_target.clamp_min(1.0), 0.0) + ridge
    sd = a[:, None] * mom_diag + b[:, None] * keepf + (1.0 - keepf)
    ok = ((~shrunk) & (n_eff > d_eff)).to(s0.dtype)
    safe = torch.where(ok > 0, n_eff, float(d + 2))
    return {"n_eff": n_eff, "f": f, "shrunk": shrunk, "raw_target": raw_target, "a": a,
            "sd": sd, "ok": ok, "safe": safe}


def _clip_fill(
    raw: torch.Tensor, h_q: torch.Tensor, keepf: torch.Tensor, d: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Terms ``(1 + 2d,)`` (whole, singles, complements) clipped to ``[0, H(Q)]``, the dropped
    constant columns filled by :func:`fill_constant_columns`."""
    out = torch.minimum(raw, h_q).clamp_min(0.0)
    return fill_constant_columns(out[0], out[1 : 1 + d], out[1 + d :], keepf > 0)


class MomentTerms(torch.autograd.Function):
    """``(whole, single, complement, H(Q), shrunk cells, null singles)`` (bits) from cell sums.

    The memory path of the Gaussian-copula loss in a few batched operations. ``t`` ``(M, P)``
    holds the sums ``[sum w, sum w g, sum w g g^T]`` (``P = 1 + d + d^2``) of ``M - 1`` Q cells
    and, last, of the whole matrix; ``w2`` ``(M,)`` the sums of ``w^2`` (last:
    ``sum_j (sum_c w_jc)^2``). ``t_null`` ``(M, 1 + 2d)`` and ``w2_null`` are the sums
    ``[sum w, sum w g, sum w g^2]`` of the shuffled null's cells (empty tensors for none): its
    singles need only the diagonals. The values are those of :func:`gaussian_entropies` and
    :func:`_assemble` (covariances from :func:`covariance_from_sums`, shrinkage of cells with
    ``n_eff <= d + 1``, ridge, bias correction, constant columns dropped and filled, terms
    clipped to ``[0, H(Q)]``). The backward is written out: one batched product through the
    precision matrices, the rest on per-cell scalars, where autograd's graph of those steps is a
    chain of a few hundred small kernels. ``grad_scale`` multiplies the gradient of ``t`` and
    ``w2`` (the memory's dilution, see :func:`gibloss.functional.gib_terms`).
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        t: torch.Tensor,
        w2: torch.Tensor,
        t_null: torch.Tensor,
        w2_null: torch.Tensor,
        grad_scale: torch.Tensor,
        d: int,
        shrinkage: float,
        ridge: float,
        bias_correct: bool,
    ) -> tuple[torch.Tensor, ...]:
        c = t.shape[0] - 1
        s0, s1 = t[:, 0], t[:, 1 : 1 + d]
        s2 = t[:, 1 + d :].view(c + 1, d, d)
        total = s0[c]
        occ, s0e, _ = _occupied(s0, s1)
        occf = occ.to(t.dtype)
        keepf = (torch.diagonal(s2[c]) > 0).to(t.dtype)  # (d,): not constant
        d_eff = keepf.sum()
        mom, mu = centred_moments(s0e, s1 * occf[:, None], s2)
        mom_diag = torch.diagonal(mom, dim1=-2, dim2=-1)
        mom_diag.add_((1.0 - occf)[:, None])
        cells = _cell_model(s0, w2, mom_diag, keepf, d_eff, occ, shrinkage, ridge)
        sigma = cells["a"][:, None, None] * mom
        torch.diagonal(sigma, dim1=-2, dim2=-1).copy_(cells["sd"])
        chol = torch.linalg.cholesky_ex(sigma).L
        logdet = 2.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(dim=-1)
        prec = torch.cholesky_inverse(chol)
        pd = torch.diagonal(prec, dim1=-2, dim2=-1)
        # entropies (nats) (M, 1 + 2d): whole, singles, complements
        h_w = 0.5 * logdet + d_eff * _CONST
        h_s = 0.5 * torch.log(cells["sd"]) + _CONST
        h_c = 0.5 * (logdet[:, None] + torch.log(pd)) + (d_eff - 1.0) * _CONST
        if bias_correct:
            bias = _bias_parts(cells["safe"], d, d_eff, slopes=False) * cells["ok"][:, None]
            h_w, h_s, h_c = h_w - bias[:, 0], h_s - bias[:, 1:2], h_c - bias[:, 2:3]  # (M,)
        h = torch.cat([h_w[:, None], h_s, h_c if d > 1 else torch.zeros_like(h_c)], dim=1)
        h = h / _LN2
        p = occf[:c] * s0[:c] / total  # (C,)
        h_q = entropy_bits(p / p.sum())
        raw = h[c] - p @ h[:c]  # (1 + 2d,)
        whole, single, comp = _clip_fill(raw, h_q, keepf, d)
        n_shrunk = (cells["shrunk"] & occ)[:c].sum()
        single_null = (
            _null_singles(t_null, w2_null, keepf, d_eff, d, shrinkage, ridge, bias_correct)
            if t_null.numel()
            else torch.zeros_like(single)
        )
        ctx.d, ctx.shrinkage, ctx.bias_correct = d, shrinkage, bias_correct
        ctx.save_for_backward(
            t, w2, grad_scale, occf, keepf, d_eff, mu, mom, cells["n_eff"], cells["f"],
            cells["shrunk"], cells["raw_target"], cells["a"], prec, pd, cells["sd"], h, p,
            h_q, raw, cells["ok"], cells["safe"],
        )
        ctx.mark_non_differentiable(n_shrunk, single_null)
        return whole, single, comp, h_q, n_shrunk, single_null

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(  # type: ignore[override]
        ctx: Any,
        g_whole: torch.Tensor,
        g_single: torch.Tensor,
        g_comp: torch.Tensor,
        g_hq: torch.Tensor,
        *_: Any,
    ) -> tuple[Any, ...]:
        (t, w2, grad_scale, occf, keepf, d_eff, mu, mom, n_eff, f, shrunk, raw_target,
         a, prec, pd, sd, h, p, h_q, raw, okf, safe) = ctx.saved_tensors
        d, lam = ctx.d, ctx.shrinkage
        c = t.shape[0] - 1
        # the constant columns' fill, then the clip to [0, H(Q)] (torch's rules at ties)
        g_comp = g_comp * (d > 1)
        g_out = torch.cat(
            [
                ((g_whole + g_comp @ (1.0 - keepf)) * (d_eff > 0)).reshape(1),
                g_single * keepf,
                g_comp * keepf * (d_eff > 1),
            ]
        ) * (torch.minimum(raw, h_q) > 0)
        to_raw = (raw < h_q).to(raw.dtype) + 0.5 * (raw == h_q)
        g_raw = g_out * to_raw
        g_hq = g_hq + g_out @ (1.0 - to_raw)
        # raw = h(whole row) - sum_c p_c h_c ; H(Q) of u = p / sum p
        g_h = torch.cat([-p[:, None] * g_raw, g_raw[None]]) / _LN2  # (M, 1 + 2d), nats
        norm = p.sum()  # H(Q) of u = p / norm: dH/dp_j = (-log2 u_j - H) / norm
        u = p / norm
        log_u = torch.log(torch.where(u > 0, u, 1.0))
        g_p = -(h[:c] @ g_raw) + g_hq * (-log_u / _LN2 - h_q) / norm
        # entropies -> log det, log diag(P), log diag(Sigma), n_eff (the biases)
        g_w, g_s, g_c = g_h[:, 0], g_h[:, 1 : 1 + d], g_h[:, 1 + d :]
        g_sigma = torch.baddbmm(
            (0.5 * (g_w + g_c.sum(dim=1)))[:, None, None] * prec,
            prec,
            (0.5 * g_c / pd)[:, :, None] * prec,
            alpha=-1.0,
        )
        torch.diagonal(g_sigma, dim1=-2, dim2=-1).add_(0.5 * g_s / sd)
        g_n = torch.zeros_like(n_eff)
        if ctx.bias_correct:
            slope = _bias_parts(safe, d, d_eff, slopes=True)  # (M, 3)
            g_parts = torch.stack([g_w, g_s.sum(dim=1), g_c.sum(dim=1)], dim=1)
            g_n = -okf * (slope * g_parts).sum(dim=1)
        # Sigma = a mom + diag(b keep + 1 - keep): a = f (1 - lam [shrunk]),
        # b = lam [shrunk] max(tr(mom) f / d_eff, 1) + ridge
        shf = shrunk.to(t.dtype)
        dk = d_eff.clamp_min(1.0)
        g_target = (torch.diagonal(g_sigma, dim1=-2, dim2=-1) @ keepf) * lam * shf
        g_target = g_target * (raw_target > 1.0) / dk  # d/d tr(cov)
        g_mom = a[:, None, None] * g_sigma
        torch.diagonal(g_mom, dim1=-2, dim2=-1).add_((g_target * f)[:, None])
        g_f = _inner(g_sigma, mom) * (1.0 - lam * shf) + g_target * raw_target * dk / f
        g_n = g_n + torch.where(n_eff > 1, -g_f / (n_eff - 1.0).clamp_min(1e-12) ** 2, 0.0)
        # mom = s2 / s0 - mu mu^T, mu = s1 / s0, n_eff = s0^2 / w2 (occupied cells only)
        s0 = t[:, 0]
        s0e = torch.where(occf > 0, s0, 1.0)
        w2e = torch.where(occf > 0, w2, 1.0)
        g_mu = -2.0 * (g_mom @ mu[:, :, None])[:, :, 0]
        # <g_mom, s2 / s0> = <g_mom, mom> + mu^T g_mom mu, and g_mom mu = -g_mu / 2
        g_s0 = g_n * 2.0 * s0 / w2e - (_inner(g_mom, mom) + 0.5 * (g_mu * mu).sum(1)) / s0e
        g_s0 = g_s0 + torch.cat([g_p * occf[:c], -(g_p @ p).reshape(1)]) / s0[c]
        scale = occf * grad_scale / s0e
        g_t = torch.empty_like(t)  # written in place: no concatenated copy
        torch.mul(g_s0 * s0e, scale, out=g_t[:, 0])
        torch.mul(g_mu, scale[:, None], out=g_t[:, 1 : 1 + d])
        torch.mul(g_mom.flatten(1), scale[:, None], out=g_t[:, 1 + d :])
        g_w2 = -g_n * (s0 / w2e) ** 2 * occf * grad_scale
        return g_t, g_w2, None, None, None, None, None, None, None


def _null_singles(
    t_null: torch.Tensor,
    w2_null: torch.Tensor,
    keepf: torch.Tensor,
    d_eff: torch.Tensor,
    d: int,
    shrinkage: float,
    ridge: float,
    bias_correct: bool,
) -> torch.Tensor:
    """Single terms (bits) of the shuffled null from its diagonal sums (no gradient)."""
    c = t_null.shape[0] - 1
    s0, s1, s2d = t_null[:, 0], t_null[:, 1 : 1 + d], t_null[:, 1 + d :]
    occ, s0e, mu = _occupied(s0, s1)
    occf = occ.to(s0.dtype)
    mom_diag = s2d / s0e[:, None] - mu * mu + (1.0 - occf)[:, None]  # centred_moments' diagonal
    cells = _cell_model(s0, w2_null, mom_diag, keepf, d_eff, occ, shrinkage, ridge)
    h_s = 0.5 * torch.log(cells["sd"]) + _CONST
    if bias_correct:
        bias = _bias_parts(cells["safe"], d, d_eff, slopes=False)[:, 1] * cells["ok"]
        h_s = h_s - bias[:, None]
    h_s = h_s / _LN2
    p = occf[:c] * s0[:c] / s0[c]
    h_q = entropy_bits(p / p.sum())
    raw = h_s[c] - p @ h_s[:c]
    return torch.where(keepf > 0, torch.minimum(raw, h_q).clamp_min(0.0), 0.0)

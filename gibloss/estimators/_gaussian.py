"""Gaussian entropies of many covariance matrices at once, in torch (differentiable).

The one implementation behind the exact Gaussian-copula estimator (called with numpy data, no
gradient) and the differentiable Gaussian-copula surrogate of :mod:`gibloss.functional`.
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
    mean = s1 / s0.unsqueeze(-1)
    cov = s2 / s0[..., None, None] - mean.unsqueeze(-1) * mean.unsqueeze(-2)
    n_eff = s0 * s0 / w2
    return cov * unbiasing_factor(n_eff)[..., None, None], n_eff


def _biases(
    n_eff: torch.Tensor, d: int, d_eff: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Ince et al.'s analytic bias corrections (nats) of ``m``-, 1- and ``(m-1)``-variate
    Gaussian entropies with effective sizes ``n_eff``, ``m = d`` (or the 0-d tensor ``d_eff``
    of the columns kept): one digamma pass serves all three (``sum_{k<=m} psi((n - k) / 2) / 2``
    for the three ``m`` are partial sums of one row)."""
    k = torch.arange(1, d + 1, dtype=n_eff.dtype, device=n_eff.device)
    dterm = (_LN2 - torch.log(n_eff - 1.0)) / 2.0
    if d_eff is None:
        psis = torch.cumsum(torch.special.digamma((n_eff[:, None] - k) / 2.0), dim=1) / 2.0
        b_comp = (d - 1) * dterm + psis[:, d - 2] if d > 1 else torch.zeros_like(n_eff)
        return d * dterm + psis[:, d - 1], dterm + psis[:, 0], b_comp
    # terms beyond d_eff are not summed: a finite stand-in keeps their (zero) gradient finite
    upto = (k <= d_eff).to(n_eff.dtype)  # (d,): the k of an m-variate sum, m = d_eff
    psi = torch.special.digamma(torch.where(upto > 0, (n_eff[:, None] - k) / 2.0, 1.0)) / 2.0
    de = d_eff.to(n_eff.dtype)
    b_whole = de * dterm + psi @ upto
    b_comp = (de - 1) * dterm + psi @ (k <= d_eff - 1).to(n_eff.dtype)  # 0 when d_eff = 1
    return b_whole, dterm + psi[:, 0], b_comp


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
    keep: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Entropies (bits) of Gaussians with covariances ``(C, d, d)``, their columns and complements.

    A covariance whose effective sample size is at most ``d + 1`` is shrunk towards
    ``max(tr(S)/d, 1) * I`` (intensity ``shrinkage``) and gets no bias correction; every
    covariance gets ``ridge`` on its diagonal. The complement entropies use
    ``log det S_{-i,-i} = log det S + log (S^{-1})_{ii}``: one batched Cholesky and one batched
    triangular inverse serve all of them.

    ``keep`` (``(d,)`` bool) computes everything as if only the kept columns were there, without
    a host synchronisation and with no shape depending on it. The dropped rows and columns of
    ``covs`` must be zero (a column that is zero in every row); they become the identity's
    (log-determinant 0, independent of the rest), ``d`` in the shrinkage rule, its target and
    the bias correction is the number of kept columns, and the dropped columns' own entries are
    meaningless (callers fill them).

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
    d_eff: Any = d
    eye_kept = eye  # the shrinkage target's and the ridge's identity: on the kept columns
    if keep is not None:
        d_eff = keep.sum()
        eye_kept = torch.diag(keep.to(covs.dtype))
    # The tolerance keeps the decision stable when n_eff is an integer up to rounding (uniform
    # weights), whichever way n_eff was computed.
    shrunk = n_effs.detach() <= d_eff + 1 + 1e-6
    # computed for every cell and selected (no host synchronisation to ask whether any is shrunk)
    trace = torch.diagonal(covs, dim1=1, dim2=2).sum(dim=1)
    target = torch.clamp_min(trace / (d if keep is None else d_eff.clamp_min(1)), 1.0)
    shrunk_covs = (1 - shrinkage) * covs + shrinkage * target[:, None, None] * eye_kept
    covs = torch.where(shrunk[:, None, None], shrunk_covs, covs)
    covs = covs + ridge * eye_kept
    if keep is not None:  # the dropped rows and columns (zero) become the identity's
        covs = covs + (eye - eye_kept)
    logdet, log_inv_diag = LogdetPrecisionDiagonal.apply(covs)
    h_whole = 0.5 * logdet + d_eff * _CONST
    h_single = 0.5 * torch.log(torch.diagonal(covs, dim1=1, dim2=2)) + _CONST
    h_comp = 0.5 * (logdet[:, None] + log_inv_diag) + (d_eff - 1) * _CONST
    if bias_correct:
        ok = (~shrunk) & (n_effs.detach() > d_eff)
        safe = torch.where(ok, n_effs, torch.full_like(n_effs, float(d + 2)))
        okf = ok.to(n_effs.dtype)
        b_whole, b_single, b_comp = _biases(safe, d, None if keep is None else d_eff)
        h_whole = h_whole - okf * b_whole
        h_single = h_single - (okf * b_single)[:, None]
        h_comp = h_comp - (okf * b_comp)[:, None]
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

    The one implementation of the Gaussian-copula GIB terms. A Q cell is ``(h, c)``: sample
    ``j`` sits in the cells ``(hard[j], c)`` with mass ``mass[j, c]``. The exact estimator calls
    it with hard cells (``hard`` = the Q codes, ``mass`` = the sample weights as one column); the
    differentiable surrogate with the target's codes and soft memberships over Z codes.

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
    keep: torch.Tensor | None = None,
) -> ClassConditionalTerms:
    """``I = H(G) - sum_q p(q) H(G | q)`` per term, clipped to ``[0, H(Q)]``.

    With ``keep`` (the columns that are not constant), a dropped column's single term is 0 and
    its complement term is the whole's (its complement holds every informative column), as the
    exact estimator fills them; no columns kept, no information.
    """
    hw, hs, hc = h_cells
    h_q = entropy_bits(p_q / p_q.sum())
    whole = torch.minimum(h_all[0][0] - p_q @ hw, h_q).clamp_min(0.0)
    single = torch.minimum(h_all[1][0] - p_q @ hs, h_q).clamp_min(0.0)
    comp = torch.minimum(h_all[2][0] - p_q @ hc, h_q).clamp_min(0.0)
    if keep is not None:
        whole, single, comp = fill_constant_columns(whole, single, comp, keep)
    elif d == 1:
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

    @classmethod
    def of_batch(
        cls, g: torch.Tensor, hard: torch.Tensor, n_hard: int, mass: torch.Tensor
    ) -> CellMoments:
        """The sums of one batch: rows ``g`` ``(n, d)`` in cells ``(hard[j], c)``, masses
        ``(n, K)``."""
        n, k = mass.shape
        # one-hot by scatter: F.one_hot checks the codes' range with a host synchronisation
        onehot = mass.new_zeros((n, n_hard)).scatter_(1, hard[:, None], 1.0)
        w = (onehot.unsqueeze(-1) * mass.unsqueeze(1)).reshape(n, n_hard * k)  # (n, C)
        wt = w.T
        # every cell's sum w g g^T as one GEMM against the rows' outer products (n, d * d):
        # no (cells, rows, d) temporary, and its backward is one GEMM too
        d = g.shape[1]
        s2 = (wt @ (g.unsqueeze(2) * g.unsqueeze(1)).reshape(n, d * d)).view(-1, d, d)
        rows = mass.sum(dim=1)
        return cls(w.sum(dim=0), wt @ g, s2, (w * w).sum(dim=0), (rows * rows).sum())

    def decayed_plus(self, batch: CellMoments, decay: float) -> CellMoments:
        """``decay * self + batch`` (``self`` is memory: no gradient flows into it)."""
        return CellMoments(
            *(decay * a.detach() + b for a, b in zip(self.astuple(), batch.astuple(), strict=True))
        )

    def astuple(self) -> tuple[torch.Tensor, ...]:
        return self.s0, self.s1, self.s2, self.w2, self.r2

    def to(self, dtype: torch.dtype) -> CellMoments:
        """The same sums in ``dtype`` (a no-op when they are already)."""
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
    constant column after the copula transform) is dropped as the exact estimator drops it,
    through ``gaussian_entropies(keep=...)``: no host synchronisation, no shape that depends on
    it.
    """
    s0, s1, s2, w2, r2 = moments.astuple()
    total = s0.sum()
    occ = (s0.detach() / total.detach()) > MIN_MASS
    d = s1.shape[1]
    s2_all = s2.sum(dim=0)
    keep = torch.diagonal(s2_all.detach()) > 0  # sum w g^2 = 0: the column is 0 in every row
    opts = {"shrinkage": shrinkage, "ridge": ridge, "bias_correct": bias_correct, "keep": keep}
    cov_all, neff_all = covariance_from_sums(total, s1.sum(dim=0), s2_all, r2)
    h_all = gaussian_entropies(cov_all[None], neff_all[None], **opts)
    # Empty cells stay in place with the moments of a unit Gaussian of ample size and zero
    # mass: finite entropies that weigh nothing, and no data-dependent shape.
    eye = torch.eye(d, dtype=s2.dtype, device=s2.device)
    one = torch.ones_like(s0)
    covs, n_effs = covariance_from_sums(
        torch.where(occ, s0, one),
        torch.where(occ[:, None], s1, 0.0 * s1),
        torch.where(occ[:, None, None], s2, eye.expand_as(s2)),
        torch.where(occ, w2, one / (2.0 * d + 10.0)),
    )
    hw, hs, hc, shrunk = gaussian_entropies(covs, n_effs, **opts)
    p_q = torch.where(occ, s0, 0.0 * s0) / total
    return _assemble(h_all, (hw, hs, hc), p_q, d, (shrunk & occ).sum(), keep)

"""The two differentiable surrogates of the GIB terms, given a soft Q.

**Soft binning** (``estimator="binning"``): the joint tables of every feature partition (hard
bins of ``x^i``, hard row identities of ``x^{-i}``, shared with the exact binning estimator) with
the soft Q cells are sums of ``mu``; plug-in MI from the tables.

**Gaussian copula** (``estimator="gaussian_copula"``): copula-normalised features, a weighted
Gaussian per Q cell with ``mu`` as soft membership weights, complements from the precision
diagonal, the same shrinkage and bias correction as the exact estimator (one shared
implementation), optionally fitted to this batch's cell sums plus remembered ones (the memory).

Each returns ``(whole, single, complement, diagnostics)`` in bits, on the graph of ``q.mass``.
"""

from __future__ import annotations

from typing import Any

import torch

from .estimators._gaussian import (
    CellMoments,
    MomentTerms,
    class_conditional_terms,
    fill_constant_columns,
    informative_columns,
)
from .estimators.binning import BinningEstimator, partition_terms
from .estimators.gcmi import copula_ranks
from .q import SoftQ

__all__ = ["binning_terms", "gaussian_terms"]


def binning_terms(
    x: torch.Tensor, q: SoftQ, bins: int, null: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
    parts = BinningEstimator(bins=bins).partitions(x)
    terms = partition_terms(parts, q.hard, q.n_hard, q.mass)
    n, n_feat = x.shape
    if n_feat > 1:
        saturated = (parts.cards[:n_feat] == n).to(q.mass.dtype).mean()
    else:
        saturated = q.mass.new_zeros(())
    diagnostics: dict[str, Any] = {"saturated_complements": saturated}
    if null is not None:  # the same partitions, Q's rows permuted
        with torch.no_grad():
            shuffled = partition_terms(parts, q.hard[null], q.n_hard, q.mass.detach()[null])
        diagnostics["single_null"] = shuffled.single
    return terms.whole, terms.single, terms.complement, diagnostics


def _memory_terms(
    g_all: torch.Tensor,
    q: SoftQ,
    memory: CellMoments | None,
    decay: float,
    opts: dict[str, Any],
    null: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
    """Gaussian terms from this batch's cell sums plus ``decay`` times the remembered ones.

    Every column is summed (a column constant in this batch is a zero copula column), so that
    the sums of different batches add up; a column that is zero in every remembered row is
    dropped when the terms are formed, as the exact estimator drops constant columns
    (``tests/test_memory_exact.py``: with hard memberships, the memory path equals the exact
    estimator on one batch and, at full memory, on the pooled rows). The sums and the
    covariances made from them are float64 whatever ``dtype``: a covariance from sums,
    ``E[g g^T] - mean mean^T``, cancels badly in float32 for a light cell (a NaN at 5 rows with
    ``temperature=0.01``). The terms come back in ``q.mass``'s dtype; ``diagnostics["h_q"]``
    is the entropy of Q under the remembered measure, the bound of every term.

    Every cell's sums ``[sum w, sum w g, sum w g g^T]`` are one product of the ``(n, cells)``
    weights with the rows' ``[1, g, g g^T]``; with ``null`` (a permutation of the rows), the
    shuffled null's cells are more columns of the same product, and :class:`MomentTerms`
    computes the batch and its null in one batched pass.
    """
    g = g_all.to(torch.float64)
    n, d = g.shape
    mass = q.mass.to(torch.float64)
    n_cells = q.n_hard * mass.shape[1]
    # sample j sits in the cells (hard[j], c) with weight mass[j, c]; the last column is the
    # whole matrix (a row's total mass): (n, cells + 1)
    onehot = mass.new_zeros((n, q.n_hard)).scatter_(1, q.hard[:, None], 1.0)
    row_mass = mass.sum(dim=1)
    w = (onehot[:, :, None] * mass[:, None, :]).reshape(n, n_cells)
    w = torch.cat([w, row_mass[:, None]], dim=1)
    # each row's [1, g, g g^T], written in place
    rows = g.new_empty((n, 1 + d + d * d))
    rows[:, 0] = 1.0
    rows[:, 1 : 1 + d] = g
    torch.mul(g[:, :, None], g[:, None, :], out=rows[:, 1 + d :].view(n, d, d))
    t = w.T @ rows  # (cells + 1, 1 + d + d^2)
    w2 = (w * w).sum(dim=0)  # the last entry, sum_j (row mass)^2, is the same for the null
    t_null = w2_null = g.new_zeros(0)
    if null is not None:  # its singles need the diagonal sums only: [sum w, sum w g, sum w g^2]
        cols = torch.arange(1 + d, device=g.device)
        diagonal = torch.cat([cols, 1 + d + (d + 1) * cols[:d]])
        w_null = w.detach()[null]
        t_null = w_null.T @ rows[:, diagonal]
        w2_null = (w_null * w_null).sum(dim=0)
    scale = torch.ones((), dtype=g.dtype, device=g.device)
    if memory is not None:
        if memory.s1.shape != (n_cells, d):
            raise ValueError(
                f"`x` has {d} feature columns and Q has {n_cells} cells, but the memory holds "
                f"{memory.s1.shape[1]} columns and {memory.s0.shape[0]} cells; reset it "
                "(GIBLoss.reset_memory()) when the features change"
            )
        # The batch is a fraction ~(1 - decay) of the remembered sums, so the gradient through
        # it is diluted by that fraction. Each row is a current batch only once but stays in the
        # memory for ~1 / (1 - decay) steps: scale its gradient by the inverse fraction (the
        # value is unchanged), so that a weight means what it means without the memory.
        mem_t, mem_w2 = (m.detach() for m in memory.to(torch.float64).packed())
        t = decay * mem_t + t
        w2 = decay * mem_w2 + w2
        if null is not None:
            t_null = decay * mem_t[:, diagonal] + t_null
            w2_null = decay * mem_w2 + w2_null
        scale = (t[n_cells, 0] / row_mass.sum()).detach()
    whole, single, comp, h_q, n_shrunk, single_null = MomentTerms.apply(
        t, w2, t_null, w2_null, scale, d, opts["shrinkage"], opts["ridge"], opts["bias_correct"]
    )
    dt = q.mass.dtype
    diagnostics = {
        "shrunk_cells": n_shrunk,
        "memory": CellMoments.from_packed(t.detach(), w2.detach(), d),
        "h_q": h_q.to(dt),
    }
    if null is not None:
        diagnostics["single_null"] = single_null.to(dt)
    return whole.to(dt), single.to(dt), comp.to(dt), diagnostics


def _batch_terms(
    g_all: torch.Tensor, hard: torch.Tensor, n_hard: int, mass: torch.Tensor, opts: dict[str, Any]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gaussian terms of one batch's rows (constant columns dropped, then filled)."""
    n_feat = g_all.shape[1]
    keep = informative_columns(g_all)
    zero = 0.0 * mass.sum()  # a zero that stays on the graph (backward gives zero grads)
    zeros = zero + mass.new_zeros(n_feat)
    n_keep = int(keep.sum())  # one synchronisation: constant columns carry no information
    if n_keep == 0:
        return zero, zeros, zeros, torch.zeros((), dtype=torch.long, device=mass.device)
    g = (g_all if n_keep == n_feat else g_all[:, keep]).to(mass.dtype)
    terms = class_conditional_terms(g, hard, mass, n_hard=n_hard, **opts)
    if n_keep == n_feat:
        return terms.whole, terms.single, terms.complement, terms.n_shrunk
    whole, single, complement = fill_constant_columns(
        terms.whole,
        zeros.masked_scatter(keep, terms.single),
        zeros.masked_scatter(keep, terms.complement),
        keep,
    )
    return whole, single, complement, terms.n_shrunk


def gaussian_terms(
    x: torch.Tensor,
    q: SoftQ,
    *,
    shrinkage: float,
    ridge: float,
    bias_correct: bool,
    memory: CellMoments | None = None,
    memory_decay: float = 0.0,
    null: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
    g_all = copula_ranks(x)
    opts = {"shrinkage": shrinkage, "ridge": ridge, "bias_correct": bias_correct}
    if memory_decay > 0:
        return _memory_terms(g_all, q, memory, memory_decay, opts, null)
    whole, single, comp, n_shrunk = _batch_terms(g_all, q.hard, q.n_hard, q.mass, opts)
    diagnostics: dict[str, Any] = {"shrunk_cells": n_shrunk}
    if null is not None:  # the same copula ranks, Q's rows permuted
        with torch.no_grad():
            shuffled = _batch_terms(g_all, q.hard[null], q.n_hard, q.mass.detach()[null], opts)
        diagnostics["single_null"] = shuffled[1]
    return whole, single, comp, diagnostics

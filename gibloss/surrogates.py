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
    class_conditional_terms,
    fill_constant_columns,
    informative_columns,
    terms_from_moments,
)
from .estimators.binning import BinningEstimator, partition_terms
from .estimators.gcmi import copula_ranks
from .q import SoftQ

__all__ = ["binning_terms", "gaussian_terms"]


def binning_terms(
    x: torch.Tensor, q: SoftQ, bins: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
    parts = BinningEstimator(bins=bins).partitions(x)
    terms = partition_terms(parts, q.hard, q.n_hard, q.mass)
    n, n_feat = x.shape
    if n_feat > 1:
        saturated = (parts.cards[:n_feat] == n).to(q.mass.dtype).mean()
    else:
        saturated = q.mass.new_zeros(())
    return terms.whole, terms.single, terms.complement, {"saturated_complements": saturated}


def _memory_terms(
    g_all: torch.Tensor,
    q: SoftQ,
    memory: CellMoments | None,
    decay: float,
    opts: dict[str, Any],
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
    """
    g = g_all.to(torch.float64)
    batch = CellMoments.of_batch(g, q.hard, q.n_hard, q.mass.to(torch.float64))
    if memory is not None:
        if memory.s1.shape != batch.s1.shape:
            raise ValueError(
                f"`x` has {g.shape[1]} feature columns and Q has {batch.s0.shape[0]} cells, but "
                f"the memory holds {memory.s1.shape[1]} columns and {memory.s0.shape[0]} cells; "
                "reset it (GIBLoss.reset_memory()) when the features change"
            )
        # The batch is a fraction ~(1 - decay) of the remembered sums, so the gradient through
        # it is diluted by that fraction. Each row is a current batch only once but stays in the
        # memory for ~1 / (1 - decay) steps: scale its gradient by the inverse fraction (the
        # value is unchanged), so that a weight means what it means without the memory.
        combined = memory.to(torch.float64).decayed_plus(batch, decay)
        scale = (combined.s0.sum() / batch.s0.sum()).detach()
        batch = CellMoments(
            *(
                c + (scale - 1.0) * (b - b.detach())
                for c, b in zip(combined.astuple(), batch.astuple(), strict=True)
            )
        )
    terms = terms_from_moments(batch, **opts)
    remembered = CellMoments(*(t.detach() for t in batch.astuple()))
    dt = q.mass.dtype
    diagnostics = {
        "shrunk_cells": terms.n_shrunk,
        "memory": remembered,
        "h_q": terms.h_q.to(dt),
    }
    return terms.whole.to(dt), terms.single.to(dt), terms.complement.to(dt), diagnostics


def gaussian_terms(
    x: torch.Tensor,
    q: SoftQ,
    *,
    shrinkage: float,
    ridge: float,
    bias_correct: bool,
    memory: CellMoments | None = None,
    memory_decay: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
    n, n_feat = x.shape
    g_all = copula_ranks(x)
    if memory_decay > 0:
        opts = {"shrinkage": shrinkage, "ridge": ridge, "bias_correct": bias_correct}
        return _memory_terms(g_all, q, memory, memory_decay, opts)
    keep = informative_columns(g_all)
    zero = 0.0 * q.mass.sum()  # a zero that stays on the graph (backward gives zero grads)
    zeros = zero + q.mass.new_zeros(n_feat)
    n_keep = int(keep.sum())  # one synchronisation: constant columns carry no information
    if n_keep == 0:
        return zero, zeros, zeros, {"shrunk_cells": 0}
    g = (g_all if n_keep == n_feat else g_all[:, keep]).to(q.mass.dtype)
    terms = class_conditional_terms(
        g,
        q.hard,
        q.mass,
        shrinkage=shrinkage,
        ridge=ridge,
        bias_correct=bias_correct,
        n_hard=q.n_hard,
    )
    if n_keep == n_feat:
        return terms.whole, terms.single, terms.complement, {"shrunk_cells": terms.n_shrunk}
    whole, single, complement = fill_constant_columns(
        terms.whole,
        zeros.masked_scatter(keep, terms.single),
        zeros.masked_scatter(keep, terms.complement),
        keep,
    )
    return whole, single, complement, {"shrunk_cells": terms.n_shrunk}



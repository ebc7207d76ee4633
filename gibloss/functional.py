"""Differentiable GIB complexity, in the style of ``torch.nn.functional``.

Two surrogates of the GIB complexity ``(1/(2 beta N)) sum_i [I(X^{-i}; Q) + I(X^i; Q)]`` whose
gradient flows through the model outputs only. The features are data: their bin codes,
row identities, copula ranks and reductions carry no gradient.

**Soft Q.** Class probabilities ``softmax(z / temperature)`` (classification) or Gaussian-Parzen
soft bins of the output (regression) replace the hard code of Z. With the target's hard code
``h_j``, the soft contingency table ``P(h, c) = (1/n) sum_j m_jc [h_j = h]`` gives differentiable
PMI ratios ``r(h, c)`` and a joint measure over (sample, Q cell),
``mu_j(c) ∝ m_jc f(r(h_j, c))`` with ``f`` set by ``pmi``. With hard memberships ``mu`` is
exactly the weighting of the exact estimator with ``z_code="argmax"``; as ``temperature → 0``
the surrogates converge to it.

**Soft binning** (``estimator="binning"``): the joint tables of every feature partition (hard
bins of ``x^i``, hard row identities of ``x^{-i}``, shared with the exact binning estimator) with
the soft Q cells are sums of ``mu``; plug-in MI from the tables.

**Gaussian copula** (``estimator="gaussian_copula"``): copula-normalised features, a weighted
Gaussian per Q cell with ``mu`` as soft membership weights, complements from the precision diagonal,
the same shrinkage and bias correction as the exact estimator (one shared implementation).

Under ``torch.distributed`` (DDP, Accelerate) every process gathers the global batch first
(:mod:`gibloss.distributed`), so each sees the global-batch estimate and DDP's gradient averaging
stays exact.

**On the device.** Everything runs in torch on the device of ``outputs``: copula ranks by
``torch.sort``, bin codes and row partitions by hashing and one sort, no numpy. The host
synchronisations are few and do not grow with the batch or the number of features: the checks of
``validate=True`` (finite values, label range), the selection of non-saturated binned partitions
and of the occupied Gaussian cells. ``validate=False`` drops the checks for training loops.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ._deprecation import warn_renamed
from ._validation import (
    as_array,
    check_task,
    looks_like_probabilities,
    single_logit_is_binary,
    warn_probabilities,
)
from .distributed import gather_batch
from .estimators import resolve_name
from .estimators._discrete import entropy_bits, host_to_device
from .estimators._gaussian import CellMoments, class_conditional_terms, terms_from_moments
from .estimators.binning import BinningEstimator, partition_terms
from .estimators.gcmi import copula_ranks
from .pmi import PMI_MODES, pmi_mass
from .split import synergy_split

__all__ = [
    "ESTIMATORS",
    "VARIANTS",
    "GIBTerms",
    "SoftQ",
    "check_options",
    "gib_complexity",
    "gib_terms",
    "loss_dtype",
    "resolve_bins",
    "soft_q",
]

#: The differentiable surrogates, named after the exact estimators they relax.
ESTIMATORS = ("binning", "gaussian_copula")
#: Eq. 5 (feature-wise synergy) or Eq. 17 (sum of singles against the whole).
VARIANTS = ("synergy", "sum_vs_whole")
Q_VALUES = ("cell", "z")
_DEPRECATED_REDUCTIONS = ("mean", "sum_vs_whole", "none")


# --- soft Q ------------------------------------------------------------------------------------


@dataclass
class SoftQ:
    """The prediction variable Q with soft memberships.

    A Q cell is ``(h, c)``: ``h`` the hard code of the target, ``c`` a soft code of the output.

    Attributes
    ----------
    hard : torch.Tensor
        ``(n,)`` long: target code of each sample.
    n_hard : int
        Number of target codes.
    mass : torch.Tensor
        ``(n, K)``: joint measure over (sample, soft code) of Q, summing to one; sample ``j`` sits
        in cells ``(hard[j], c)``.
    contingency : torch.Tensor
        ``(n_hard, K)`` unweighted soft contingency table ``P(h, c)`` (for the prediction term).
    """

    hard: torch.Tensor
    n_hard: int
    mass: torch.Tensor
    contingency: torch.Tensor

    def cell_mass(self) -> torch.Tensor:
        """``(n_hard, K)``: ``P(q)`` of every cell under the weighted measure."""
        table = self.mass.new_zeros((self.n_hard, self.mass.shape[1]))
        return table.index_add(0, self.hard, self.mass)


def _memberships(outputs: torch.Tensor, temperature: float, bins: int) -> tuple[torch.Tensor, bool]:
    """Soft codes of Z ``(n, K)`` and whether the task is classification."""
    if outputs.ndim == 2 and outputs.shape[1] >= 2:
        # softmax is shift-invariant: subtracting the (detached) row maximum first keeps
        # outputs / temperature from overflowing for huge logits or tiny temperatures.
        shifted = outputs - outputs.detach().amax(dim=1, keepdim=True)
        return torch.softmax(shifted / temperature, dim=1), True
    z = outputs.reshape(-1)
    # The memberships are invariant to a common scale of z (the bins follow the range), so
    # divide by the (detached) largest magnitude: no square below can overflow.
    big = z.detach().abs().max()
    z = z / torch.where(big > 0, big, torch.ones_like(big))
    # The bins span the batch's own range (as the exact estimator's do); the range is part of the
    # function, so gradients flow through it too.
    lo, hi = z.min(), z.max()
    width = (hi - lo) / bins
    flat = width.detach() <= 0  # a constant output: every row in the first bin
    safe = torch.where(flat, torch.ones_like(width), width)
    centers = lo + (torch.arange(bins, dtype=z.dtype, device=z.device) + 0.5) * safe
    logits = -0.5 * ((z[:, None] - centers[None, :]) / (temperature * safe)) ** 2
    first = torch.zeros((z.shape[0], bins), dtype=z.dtype, device=z.device)
    first[:, 0] = 1.0
    return torch.where(flat, first + 0.0 * z[:, None], torch.softmax(logits, dim=1)), False


def _check_targets(y: Any, n: int, validate: bool = True) -> torch.Tensor:
    """Validate ``y`` against ``n`` output rows; return it as a 1-D tensor (no copy when possible).

    Accepts ``(n,)`` or ``(n, 1)`` tensors of integer, bool or floating dtype (half precision
    included); floating targets must be finite (checked when ``validate``: one synchronisation).
    """
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"`y` must be a torch.Tensor, got {type(y).__name__}")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"`y` must have shape (n,) or (n, 1), got shape {tuple(y.shape)}")
    if y.dtype.is_complex:
        raise TypeError(f"`y` must hold integer labels or real targets, got dtype {y.dtype}")
    if y.shape[0] != n:
        raise ValueError(
            f"inputs must have the same number of samples (rows): `outputs` has {n}, "
            f"`y` has {y.shape[0]}"
        )
    if validate and y.dtype.is_floating_point and not bool(torch.isfinite(y).all()):
        bad = int((~torch.isfinite(y)).sum())
        raise ValueError(f"`y` contains {bad} NaN or infinite value(s)")
    return y


def _target_codes(
    y: torch.Tensor, classification: bool, n_classes: int, bins: int, validate: bool = True
) -> tuple[torch.Tensor, int]:
    """Hard codes of the (validated, 1-D) target: labels, dense symbols or uniform bins.

    The label range is checked when ``validate`` (one synchronisation); integer symbols of a
    regression target are relabelled densely (``torch.unique``: one synchronisation).
    """
    if classification:
        if y.dtype.is_floating_point or y.dtype == torch.bool:
            raise TypeError(
                f"`y` must hold integer class labels for logits (n, k), got dtype {y.dtype}"
            )
        yl = y.long()
        if validate and yl.numel():
            lo, hi = torch.stack([yl.min(), yl.max()]).tolist()
            if lo < 0 or hi >= n_classes:
                raise ValueError(
                    f"`y` labels must lie in [0, {n_classes}) to match the {n_classes} output "
                    f"columns, got range [{lo}, {hi}]"
                )
        return yl, n_classes
    yd = y.detach()
    if not yd.dtype.is_floating_point:  # integer or bool symbols
        uniq, inv = torch.unique(yd.long(), return_inverse=True)
        return inv.reshape(-1), int(uniq.numel())
    # Uniform bins over the target's own range, as BinningEstimator(bins=bins) bins it.
    yf = yd.to(torch.float64)
    yf = yf * torch.where(torch.isfinite(yf.max() - yf.min()), 1.0, 0.5)  # exact; see binning
    lo = yf.min()
    span = yf.max() - lo
    codes = torch.floor((yf - lo) / torch.where(span > 0, span, torch.ones_like(span)) * bins)
    codes = codes.clamp(0, bins - 1).long()
    return torch.where(span > 0, codes, torch.zeros_like(codes)), int(bins)


def soft_q(
    outputs: torch.Tensor,
    y: torch.Tensor,
    *,
    pmi: str = "ratio",
    temperature: float = 1.0,
    bins: int = 30,
    q: str = "cell",
    validate: bool = True,
    task: str = "auto",
) -> SoftQ:
    """Differentiable PMI-reweighted Q from model outputs and targets.

    Parameters
    ----------
    outputs : torch.Tensor
        ``(n, k)`` logits (classification), or ``(n,)`` / ``(n, 1)``: one logit of a binary
        classifier when ``y`` holds labels 0/1 (integer, bool or float), a regression output when
        ``y`` holds other float targets (see ``task``).
    y : torch.Tensor
        ``(n,)`` integer labels in ``[0, k)``, or float targets (regression; binned into ``bins``).
        Integer labels other than 0/1 with a single output column are rejected (ambiguous).
    pmi : {"ratio", "ppmi", "literal", "none"}
        Weighting of the soft cells, as in :func:`gibloss.pmi_weights`.
    temperature : float
        Softness of the memberships; towards 0 they become the hard ``argmax`` (or nearest bin).
    bins : int
        Soft bins of a regression output and hard bins of a float target.
    q : {"cell", "z"}
        Q's value: the cell ``(h, c)`` (target code, soft output code), or the soft output code
        alone, under the PMI weights (then ``hard`` is all zeros and ``n_hard`` is 1).
    validate : bool
        Check the labels (range, 0/1 for one logit) and finiteness; each check is one host
        synchronisation.
    task : {"auto", "classification", "regression"}
        How a single output column is read (ignored for ``(n, k)`` logits, which are always a
        classifier's; ``"regression"`` with them raises). ``"auto"``: a binary classifier's logit
        when ``y`` takes only the values 0 and 1 (integer, bool or float labels, as
        ``BCEWithLogitsLoss`` wants them), else a regression (float ``y``; reading the values is
        one host synchronisation). ``"classification"``/``"regression"`` say it.

    Returns
    -------
    SoftQ
    """
    if pmi not in PMI_MODES:
        raise ValueError(f"`pmi` must be one of {PMI_MODES}, got {pmi!r}")
    check_task(task)
    y = _check_targets(y, outputs.shape[0], validate)
    if outputs.ndim == 2 and outputs.shape[1] == 1:
        outputs = outputs[:, 0]
    if outputs.ndim == 2 and task == "regression":
        raise ValueError(
            f"task='regression' needs one output column, got `outputs` of shape "
            f"{tuple(outputs.shape)} (logits of a classifier)"
        )
    if outputs.ndim == 1 and single_logit_is_binary(y, task, check=validate):
        # one logit and 0/1 labels: a binary classifier, [0, z] -> [1 - sigmoid, sigmoid]
        outputs = torch.stack([torch.zeros_like(outputs), outputs], dim=1)
        y = y.long()
    m, classification = _memberships(outputs, temperature, bins)
    n, k = m.shape
    hard, n_hard = _target_codes(y, classification, k, bins, validate)
    cols = torch.arange(k, device=m.device).repeat(n)
    rows = torch.arange(n, device=m.device).repeat_interleave(k)
    mass, p_hc, _ = pmi_mass(m.reshape(-1), rows, cols, hard, n_hard, k, pmi, check=validate)
    if q == "z":
        return SoftQ(
            hard=torch.zeros_like(hard), n_hard=1, mass=mass.view(n, k), contingency=p_hc
        )
    return SoftQ(hard=hard, n_hard=n_hard, mass=mass.view(n, k), contingency=p_hc)


# --- the two surrogates ---------------------------------------------------------------------------


def _soft_binning_terms(
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


def _gaussian_terms(
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
    keep = g_all.std(dim=0) > 0
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
    single = zeros.masked_scatter(keep, terms.single)
    complement = zeros.masked_scatter(keep, terms.complement)
    if n_feat > 1:
        complement = torch.where(keep, complement, terms.whole.expand(n_feat))
    return terms.whole, single, complement, {"shrunk_cells": terms.n_shrunk}


# --- public functional API ----------------------------------------------------------------------


@dataclass
class GIBTerms:
    """Terms of one differentiable GIB evaluation (bits; tensors share the graph unless detached).

    Attributes
    ----------
    complexity : torch.Tensor
        Scalar complexity (Eq. 5, or Eq. 17 for ``variant="sum_vs_whole"``), divided by beta.
    single, complement : torch.Tensor
        ``(N,)`` ``I(X^i; Q)`` and ``I(X^{-i}; Q)``.
    whole : torch.Tensor
        ``I(X; Q)``.
    prediction : torch.Tensor
        Soft ``I(Z; Y)`` from the unweighted soft contingency table.
    h_q : torch.Tensor
        Entropy of Q under the weighted measure.
    n_samples : int
        Rows the estimate used (the global batch under distributed training).
    diagnostics : dict
        ``saturated_complements``: fraction of complements whose binned rows are all distinct
        (soft binning; their term is then ``H(Q)`` whatever the feature, so they carry no
        feature-specific signal). ``shrunk_cells``: number of Gaussian cells with at most
        ``d + 1`` effective rows, whose covariance is mostly the shrinkage target (Gaussian
        copula). ``single_null``: ``(N,)`` the single terms with the rows of ``(outputs, y)``
        permuted (one fixed permutation, no gradient), i.e. what ``single`` reads when ``x``
        carries no information about Q: their bias (with ``null=True``).
    per_feature : torch.Tensor
        ``(N,)`` each feature's share of the complexity (``complexity == per_feature.sum()``):
        ``(I(X^i;Q) + I(X^{-i};Q)) / (2 beta N)`` for Eq. 5, ``I(X^i;Q) / beta`` for Eq. 17.
    """

    complexity: torch.Tensor
    single: torch.Tensor
    complement: torch.Tensor
    whole: torch.Tensor
    prediction: torch.Tensor
    h_q: torch.Tensor
    n_samples: int
    diagnostics: dict[str, Any] = field(default_factory=dict)
    per_feature: torch.Tensor | None = None

    @property
    def synergy_share(self) -> torch.Tensor:
        """``s = mean_i II_i / I(X;Q)``: for Eq. 5, ``complexity == whole (1 - s) / (2 beta)``
        whenever ``whole > 0`` (``s`` is 0 where ``whole`` is 0).

        With the memory, the terms (and so ``s``) are those of the remembered measure. See
        :mod:`gibloss.split`.
        """
        return synergy_split(self.whole, self.single, self.complement)[1]

    @property
    def total_effect(self) -> torch.Tensor:
        """``(N,)`` ``I(X;Q) - I(X^{-i};Q) = I(X^i;Q | X^{-i})`` (see :mod:`gibloss.split`)."""
        return synergy_split(self.whole, self.single, self.complement)[2]

    def detach(self) -> GIBTerms:
        """A copy with every tensor detached (for logging)."""
        return GIBTerms(
            self.complexity.detach(),
            self.single.detach(),
            self.complement.detach(),
            self.whole.detach(),
            self.prediction.detach(),
            self.h_q.detach(),
            self.n_samples,
            {
                k: v.detach() if isinstance(v, torch.Tensor) else v
                for k, v in self.diagnostics.items()
            },
            None if self.per_feature is None else self.per_feature.detach(),
        )

    def as_dict(self) -> dict[str, Any]:
        """Plain Python numbers and lists (one device-to-host copy per tensor)."""
        c = self.complexity.detach()
        return {
            "complexity": float(c) if c.numel() == 1 else c.cpu().tolist(),
            "prediction": float(self.prediction.detach()),
            "whole": float(self.whole.detach()),
            "h_q": float(self.h_q.detach()),
            "single": self.single.detach().cpu().tolist(),
            "complement": self.complement.detach().cpu().tolist(),
            "synergy_share": float(self.synergy_share.detach()),
            "total_effect": self.total_effect.detach().cpu().tolist(),
            "n_samples": self.n_samples,
            "diagnostics": {
                k: (v.detach().cpu().tolist() if isinstance(v, torch.Tensor) else v)
                for k, v in self.diagnostics.items()
                if isinstance(v, (torch.Tensor, int, float))
            },
        }


def _features(x: Any, reducer: Any, n: int, validate: bool) -> torch.Tensor:
    """``x`` (or its reduction) as a 2-D tensor; host arrays are validated and copied once."""
    if reducer is not None:
        with torch.no_grad():
            x = reducer.transform(x)
    if isinstance(x, torch.Tensor):
        xt = x.detach()
        if xt.ndim == 1:
            xt = xt[:, None]
        if xt.ndim != 2:
            raise ValueError(f"`x` must have shape (n, N), got shape {tuple(xt.shape)}")
        if xt.shape[1] == 0:
            raise ValueError(f"`x` must have at least one column, got shape {tuple(xt.shape)}")
        if xt.dtype.is_complex:
            raise TypeError(f"`x` must be real-valued, got dtype {xt.dtype}")
        if validate and xt.dtype.is_floating_point and not bool(torch.isfinite(xt).all()):
            raise ValueError("`x` contains NaN or infinite values")
    else:
        xt = torch.as_tensor(as_array(x, "x"))
    if xt.shape[0] != n:
        raise ValueError(
            f"inputs must have the same number of samples (rows): `x` has {xt.shape[0]}, "
            f"`outputs` has {n}"
        )
    return xt


def _is_real(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_count(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1


def resolve_bins(estimator: str, bins: int | None, z_bins: int | None) -> tuple[int, int]:
    """``(bins, z_bins)``: feature bins (binning) and the bins of Z and float targets.

    ``z_bins`` defaults to ``bins`` for binning (features and outputs binned alike, as in
    :func:`gibloss.gib`), 30 otherwise. ``bins`` with the Gaussian copula is the 0.1 spelling of
    ``z_bins`` (deprecated).
    """
    if bins is not None and not _is_count(bins):
        raise ValueError(f"`bins` must be a positive integer, got {bins!r}")
    if bins is not None and estimator != "binning":
        warn_renamed(
            f"bins={bins!r} with estimator={estimator!r} (it set the bins of Z)",
            f"z_bins={bins!r}",
            stacklevel=4,
        )
        z_bins, bins = (bins if z_bins is None else z_bins), None
    bins = 30 if bins is None else bins
    z_bins = (bins if estimator == "binning" else 30) if z_bins is None else z_bins
    return bins, z_bins


def check_options(
    *,
    estimator: str = "gaussian_copula",
    beta: float = 1.0,
    pmi: str = "ratio",
    temperature: float = 1.0,
    variant: str = "synergy",
    bins: int = 30,
    z_bins: int = 30,
    q: str = "cell",
    shrinkage: float = 0.1,
    ridge: float = 1e-6,
    bias_correct: bool = True,
    dtype: torch.dtype = torch.float64,
    gather: bool = True,
    null: bool = True,
    validate: bool = True,
    memory_decay: float = 0.0,
    reduction: str | None = None,
    task: str = "auto",
) -> None:
    """Validate the keyword options of :func:`gib_terms` (also used by ``GIBLoss.__init__``).

    Names are the canonical ones (see :func:`gibloss.estimators.resolve_name`).

    Raises
    ------
    ValueError
        Naming the first argument that is out of its range or not one of its choices.
    TypeError
        For a flag that is not a bool or a dtype that is not a floating torch dtype.
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"`estimator` must be one of {ESTIMATORS}, got {estimator!r}")
    if variant not in VARIANTS:
        raise ValueError(f"`variant` must be one of {VARIANTS}, got {variant!r}")
    if pmi not in PMI_MODES:
        raise ValueError(f"`pmi` must be one of {PMI_MODES}, got {pmi!r}")
    if q not in Q_VALUES:
        raise ValueError(f"`q` must be one of {Q_VALUES}, got {q!r}")
    check_task(task)
    if not (_is_real(beta) and beta > 0):
        raise ValueError(f"`beta` must be a positive finite number, got {beta!r}")
    if not (_is_real(temperature) and temperature > 0):
        raise ValueError(f"`temperature` must be a positive finite number, got {temperature!r}")
    if not _is_count(bins):
        raise ValueError(f"`bins` must be a positive integer, got {bins!r}")
    if not _is_count(z_bins):
        raise ValueError(f"`z_bins` must be a positive integer, got {z_bins!r}")
    if not (_is_real(shrinkage) and 0.0 <= shrinkage <= 1.0):
        raise ValueError(f"`shrinkage` must lie in [0, 1], got {shrinkage!r}")
    if not (_is_real(ridge) and ridge >= 0):
        raise ValueError(f"`ridge` must be a non-negative finite number, got {ridge!r}")
    if not (_is_real(memory_decay) and 0.0 <= memory_decay < 1.0):
        raise ValueError(f"`memory_decay` must lie in [0, 1), got {memory_decay!r}")
    if memory_decay > 0 and estimator != "gaussian_copula":
        raise ValueError(
            "`memory_decay` > 0 needs estimator='gaussian_copula' (soft binning's states are "
            f"rows of one batch, which no memory can carry), got estimator={estimator!r}"
        )
    for name, flag in (
        ("bias_correct", bias_correct),
        ("gather", gather),
        ("null", null),
        ("validate", validate),
    ):
        if not isinstance(flag, bool):
            raise TypeError(f"`{name}` must be a bool, got {type(flag).__name__}")
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"`dtype` must be torch.float32 or torch.float64, got {dtype!r}")
    _check_reduction(reduction)


def _check_outputs(outputs: Any, validate: bool) -> None:
    if not isinstance(outputs, torch.Tensor):
        raise TypeError(f"`outputs` must be a torch.Tensor, got {type(outputs).__name__}")
    if not outputs.dtype.is_floating_point:
        raise TypeError(f"`outputs` must be floating point (logits), got dtype {outputs.dtype}")
    if outputs.ndim not in (1, 2) or (outputs.ndim == 2 and outputs.shape[1] < 1):
        raise ValueError(f"`outputs` must have shape (n, k) or (n,), got {tuple(outputs.shape)}")
    if outputs.shape[0] < 1:
        raise ValueError("`outputs` needs at least 1 sample (row), got 0")
    if validate:  # one synchronisation for both checks
        finite, probabilities = torch.stack(
            [torch.isfinite(outputs.detach()).all(), looks_like_probabilities(outputs)]
        ).tolist()
        if not finite:
            raise ValueError("`outputs` contains NaN or infinite values")
        if probabilities:
            warn_probabilities("outputs", stacklevel=4)


def _check_reduction(reduction: str | None) -> None:
    """0.1's ``reduction``: ``None`` or one of its three values."""
    if reduction is not None and reduction not in _DEPRECATED_REDUCTIONS:
        raise ValueError(
            f"`reduction` (deprecated) must be one of {_DEPRECATED_REDUCTIONS}, got {reduction!r}"
        )


def _deprecated_reduction(reduction: str | None, variant: str) -> tuple[str, bool]:
    """Map 0.1's ``reduction`` onto ``variant`` (and whether to return the per-feature vector)."""
    if reduction is None:
        return variant, False
    _check_reduction(reduction)
    if reduction == "sum_vs_whole":
        warn_renamed("reduction='sum_vs_whole'", "variant='sum_vs_whole'", stacklevel=4)
        return "sum_vs_whole", False
    if reduction == "none":
        warn_renamed("reduction='none'", "the `per_feature` terms of gib_terms()", stacklevel=4)
        return variant, True
    warn_renamed("reduction='mean'", "nothing (Eq. 5 is the default variant)", stacklevel=4)
    return variant, False


_warned_one_row = False


def _one_row_terms(out: torch.Tensor, n_feat: int, per_feature_out: bool = False) -> GIBTerms:
    """Every term zero, on ``out``'s graph (zero gradient): one row carries no information."""
    global _warned_one_row
    if not _warned_one_row:
        _warned_one_row = True
        warnings.warn(
            "a batch of one row carries no information about Q: its GIB terms are 0 (no "
            "gradient), and a memory is not updated (the last batch of a DataLoader without "
            "drop_last=True); warned once",
            RuntimeWarning,
            stacklevel=4,
        )
    zero = 0.0 * out.sum()
    zeros = zero + out.new_zeros(n_feat)
    complexity = zeros if per_feature_out else zero  # 0.1's reduction="none": per feature
    return GIBTerms(complexity, zeros, zeros, zero, zero, zero, int(out.shape[0]), {}, zeros)


def _at_bound(comp: torch.Tensor, h_q: torch.Tensor, n_feat: int) -> torch.Tensor:
    """Fraction of complements at their ``H(Q)`` bound (0-d tensor, no synchronisation).

    A Gaussian-copula complement reads ``H(Q)`` when its Gaussian model overshoots the bound and
    is clipped: then, as a binned complement whose rows are all distinct, it carries no
    feature-specific signal.
    """
    if n_feat < 2:
        return comp.new_zeros(())
    tol = 1e-6 * torch.clamp_min(h_q.detach(), 1.0)
    return (comp.detach() >= h_q.detach() - tol).to(comp.dtype).mean()


def check_reducer(reducer: Any) -> None:
    """``reducer`` must be None or a reducer object (an instance with ``transform``)."""
    if reducer is None:
        return
    if isinstance(reducer, type):
        raise TypeError(
            f"`reducer` must be a fitted reducer instance, got the class {reducer.__name__}; "
            f"construct and fit one first, e.g. {reducer.__name__}(50).fit(x)"
        )
    if not callable(getattr(reducer, "transform", None)):
        raise TypeError(
            f"`reducer` must be a fitted reducer with a transform() method, got "
            f"{type(reducer).__name__}"
        )


def gib_terms(
    x: Any,
    outputs: torch.Tensor,
    y: torch.Tensor,
    *,
    estimator: str = "gaussian_copula",
    beta: float = 1.0,
    pmi: str = "ratio",
    temperature: float = 1.0,
    variant: str = "synergy",
    bins: int | None = None,
    z_bins: int | None = None,
    reducer: Any = None,
    q: str = "cell",
    shrinkage: float = 0.1,
    ridge: float = 1e-6,
    bias_correct: bool = True,
    dtype: torch.dtype = torch.float64,
    gather: bool = True,
    null: bool = True,
    validate: bool = True,
    memory: CellMoments | None = None,
    memory_decay: float = 0.0,
    reduction: str | None = None,
    task: str = "auto",
) -> GIBTerms:
    """Differentiable GIB terms of a batch (bits), with gradient through ``outputs`` only.

    Parameters
    ----------
    x : torch.Tensor or numpy.ndarray
        ``(n, N)`` features (data: no gradient), or raw inputs when ``reducer`` is given. A
        tensor stays on its device; move it to ``outputs``' device for a device-resident loss.
    outputs : torch.Tensor
        ``(n, k)`` logits (classification) or ``(n,)`` outputs (regression).
    y : torch.Tensor
        ``(n,)`` integer labels or float targets.
    estimator : {"gaussian_copula", "binning"}
        The surrogate, named after the exact estimator it relaxes: ``"binning"`` (soft binning)
        relaxes ``gibloss.gib(..., estimator="binning", z_code="argmax")``;
        ``"gaussian_copula"`` relaxes ``gibloss.gib(..., estimator="gaussian_copula")`` (whose
        default ``z_code`` is ``"argmax"``). ``"soft_binning"`` and ``"gcmi"`` are deprecated
        spellings.
    beta : float
        The complexity is divided by ``beta``.
    pmi : {"ratio", "ppmi", "literal", "none"}
        Weighting of Q's cells.
    temperature : float
        Softness of Q's memberships (``softmax(outputs / temperature)``); towards 0 they become
        hard and the surrogate tends to the exact estimator.
    variant : {"synergy", "sum_vs_whole"}
        ``"synergy"``: Eq. 5, ``sum_i (I(X^i;Q) + I(X^{-i};Q)) / (2 beta N)``.
        ``"sum_vs_whole"``: Eq. 17, ``sum_i I(X^i;Q) / beta``. The same switch as
        :func:`gibloss.gib` and :func:`gibloss.synergy`.
    bins : int, optional
        Bins per feature (binning; default 30).
    z_bins : int, optional
        Soft bins of a regression output and hard bins of a float target. Default: ``bins``
        for binning, 30 for the Gaussian copula (as in :func:`gibloss.gib`).
    reducer : gibloss.reduction.Reducer, optional
        A fitted reducer applied (without gradient) to ``x`` first. A fitted
        :class:`gibloss.PCAReducer` transforms a tensor on its device (a matrix product).
    q : {"cell", "z"}
        Q's value: the cell (target code, output code), or the output code alone under the PMI
        weights (see :func:`soft_q`).
    shrinkage, ridge, bias_correct
        Gaussian-copula options, as in :class:`gibloss.GaussianCopulaEstimator`.
    dtype : torch.dtype
        Computation dtype (float64 by default, whatever autocast says).
    gather : bool
        Under ``torch.distributed``, gather the global batch first (default).
    null : bool
        Also compute, without gradient, the single terms with the rows of ``(outputs, y)``
        permuted (``diagnostics["single_null"]``: their bias). Roughly doubles the cost of
        the forward pass; switch off where it matters.
    validate : bool
        Check that ``x``, ``outputs`` and ``y`` are finite and that labels fit the outputs (one
        host synchronisation each). Switch off in a training loop once the data are known good.
    memory : CellMoments, optional
        Gaussian copula with ``memory_decay > 0``: the cell sums remembered from earlier
        batches (``diagnostics["memory"]`` of the previous call). ``None`` starts a memory.
    memory_decay : float
        ``0`` (default): the estimate uses this batch only. In ``(0, 1)``: the Gaussian cells are
        fitted to this batch's sums plus ``memory_decay`` times the remembered sums (an
        exponential moving sum over about ``1 / (1 - memory_decay)`` batches), with the gradient
        through this batch only, multiplied by the ratio of the remembered mass to the batch's
        (a row is current once but stays ``~1 / (1 - memory_decay)`` steps in the memory);
        ``diagnostics["memory"]`` holds the sums to pass next time. At
        batch sizes that leave fewer rows per Q cell than features, batch-only cells are shrunk
        towards the identity and every term hits its ``H(Q)`` bound; the memory gives them rows.
        Under distributed training every process sees the global batch, so the memories stay
        identical.
    reduction : {"mean", "sum_vs_whole", "none"}, optional
        Deprecated (0.1 used it to pick the equation): use ``variant``, and ``per_feature``
        for the per-feature vector (``"none"`` still returns it as ``complexity``).
    task : {"auto", "classification", "regression"}
        How a single output column is read (see :func:`soft_q`): by default a binary
        classifier's logit when ``y`` holds only 0 and 1 (integer or float), else a regression.

    Returns
    -------
    GIBTerms
        The complexity, the per-feature terms and shares, ``I(X; Q)``, the soft prediction term
        and ``H(Q)``. A batch of one row (the last batch of a ``DataLoader`` without
        ``drop_last``) carries no information about anything: every term is zero, on the graph
        of ``outputs`` (its gradient is zero), with a ``RuntimeWarning`` the first time.
    """
    estimator = resolve_name(estimator, choices=ESTIMATORS)
    variant, per_feature_out = _deprecated_reduction(reduction, variant)
    bins, z_bins = resolve_bins(estimator, bins, z_bins)
    check_options(
        estimator=estimator,
        beta=beta,
        pmi=pmi,
        temperature=temperature,
        variant=variant,
        bins=bins,
        z_bins=z_bins,
        q=q,
        shrinkage=shrinkage,
        ridge=ridge,
        bias_correct=bias_correct,
        dtype=dtype,
        gather=gather,
        null=null,
        validate=validate,
        memory_decay=memory_decay,
        task=task,
    )
    check_reducer(reducer)
    _check_outputs(outputs, validate)
    y = _check_targets(y, outputs.shape[0], validate)
    with torch.autocast(device_type=outputs.device.type, enabled=False):
        xt = _features(x, reducer, outputs.shape[0], validate).to(outputs.device)
        if gather:
            xt, outputs, y = gather_batch(xt, outputs, y.to(outputs.device))
        feats = xt.to(torch.float64)
        out = outputs.to(dtype)
        if out.ndim == 2 and out.shape[1] == 1:
            out = out[:, 0]
        if out.shape[0] < 2:
            return _one_row_terms(out, feats.shape[1], per_feature_out)
        if out.ndim == 1 and task == "auto":  # decided once: the null's call reads no values
            binary = single_logit_is_binary(y, task, check=validate)
            task = "classification" if binary else "regression"

        def terms_of(out: torch.Tensor, y: torch.Tensor, check: bool) -> tuple[Any, ...]:
            q_var = soft_q(
                out,
                y,
                pmi=pmi,
                temperature=temperature,
                bins=z_bins,
                q=q,
                validate=check,
                task=task,
            )
            if estimator == "binning":
                return q_var, *_soft_binning_terms(feats, q_var, bins)
            return q_var, *_gaussian_terms(
                feats,
                q_var,
                shrinkage=shrinkage,
                ridge=ridge,
                bias_correct=bias_correct,
                memory=memory,
                memory_decay=memory_decay,
            )

        q_var, whole, single, comp, diagnostics = terms_of(out, y, validate)
        if null:  # the singles' bias: the same rows with (outputs, y) permuted, no gradient
            perm = torch.randperm(out.shape[0], generator=torch.Generator().manual_seed(0))
            perm = host_to_device(perm, out.device)  # the same permutation on every device
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                diagnostics["single_null"] = terms_of(out.detach()[perm], y[perm], False)[2]
            # (the null's own memory, if any, is discarded: only the real batch is remembered)
        n_feat = feats.shape[1]
        if variant == "synergy":
            per_feature = (single + comp) / (2.0 * beta * n_feat)
        else:
            per_feature = single / beta
        if per_feature_out:  # 0.1's reduction="none": (I(X^i;Q) + I(X^{-i};Q)) / (2 beta)
            complexity = (single + comp) / (2.0 * beta)
        else:
            complexity = per_feature.sum()
        pc = q_var.contingency
        prediction = entropy_bits(pc.sum(0)) + entropy_bits(pc.sum(1)) - entropy_bits(pc)
        # with a memory, the terms are those of the remembered measure: so is their bound
        h_q = diagnostics.pop("h_q", None)
        if h_q is None:
            h_q = entropy_bits(q_var.cell_mass())
        if estimator == "gaussian_copula":
            diagnostics["saturated_complements"] = _at_bound(comp, h_q, n_feat)
    return GIBTerms(
        complexity,
        single,
        comp,
        whole,
        prediction,
        h_q,
        int(out.shape[0]),
        diagnostics,
        per_feature,
    )


def loss_dtype(outputs: torch.Tensor) -> torch.dtype:
    """The dtype a loss term returns: that of ``outputs``, at least float32 (the terms are
    computed in ``dtype``; a half-precision loss would round them)."""
    return outputs.dtype if outputs.dtype in (torch.float32, torch.float64) else torch.float32


def gib_complexity(x: Any, outputs: torch.Tensor, y: torch.Tensor, **options: Any) -> torch.Tensor:
    """Differentiable GIB complexity of a batch (bits): ``gib_terms(...).complexity``.

    Takes the keyword options of :func:`gib_terms` (``estimator``, ``beta``, ``pmi``,
    ``temperature``, ``variant``, ``bins``, ``reducer``, ...).

    Returns
    -------
    torch.Tensor
        A scalar.

    Examples
    --------
    >>> import torch
    >>> from gibloss.functional import gib_complexity
    >>> _ = torch.manual_seed(0)
    >>> x = torch.randn(64, 5)
    >>> y = (x[:, 0] > 0).long()
    >>> logits = torch.randn(64, 2, requires_grad=True)
    >>> c = gib_complexity(x, logits, y, estimator="gaussian_copula")
    >>> c.backward()
    >>> bool(torch.isfinite(logits.grad).all())
    True
    """
    return gib_terms(x, outputs, y, **options).complexity

"""Differentiable GIB complexity, in the style of ``torch.nn.functional``.

The GIB complexity ``(1/(2 beta N)) sum_i [I(X^{-i}; Q) + I(X^i; Q)]`` of the stochastic encoder
``Q ~ softmax(z / temperature)`` (:mod:`gibloss.q`), with gradient through the model
outputs only, from one of two surrogates (:mod:`gibloss.surrogates`): soft binning or the
Gaussian copula. The features are data: their bin codes, row identities, copula ranks and
reductions carry no gradient. What is computed is a :class:`gibloss.spec.GIBSpec`
(``z_code="soft"``); how (dtype, gathering, null, checks, memory) are the keywords here.

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
from typing import Any

import torch

from ._deprecation import warn_renamed
from ._validation import (
    as_array,
    looks_like_probabilities,
    single_logit_is_binary,
    warn_probabilities,
)
from .distributed import gather_batch
from .estimators._discrete import entropy_bits, host_to_device
from .estimators._gaussian import CellMoments
from .q import SoftQ, check_targets, soft_q
from .results import GIBTerms
from .spec import DIFFERENTIABLE, VARIANTS, GIBSpec, as_spec
from .surrogates import binning_terms, gaussian_terms

__all__ = [
    "ESTIMATORS",
    "VARIANTS",
    "GIBSpec",
    "GIBTerms",
    "SoftQ",
    "check_training",
    "gib_complexity",
    "gib_terms",
    "loss_dtype",
    "soft_q",
]

#: The differentiable surrogates, named after the exact estimators they relax.
ESTIMATORS = DIFFERENTIABLE
_DEPRECATED_REDUCTIONS = ("mean", "sum_vs_whole", "none")


def differentiable_spec(spec: GIBSpec, caller: str) -> GIBSpec:
    """``spec`` if a loss can train it (``z_code="soft"``), else a ``ValueError``."""
    if not spec.differentiable:
        raise ValueError(
            f"{caller} computes the soft GIB of the stochastic encoder softmax(z / temperature): "
            f"its spec needs z_code='soft', got z_code={spec.z_code!r} (measure hard codes with "
            "gibloss.gib)"
        )
    return spec


def check_training(
    *,
    estimator: str,
    dtype: torch.dtype = torch.float64,
    gather: bool = True,
    null: bool = True,
    validate: bool = True,
    memory_decay: float = 0.0,
    reduction: str | None = None,
) -> None:
    """Validate how :func:`gib_terms` computes (the what is a :class:`GIBSpec`).

    Raises
    ------
    ValueError
        Naming the first argument that is out of its range or not one of its choices.
    TypeError
        For a flag that is not a bool or a dtype that is not a floating torch dtype.
    """
    ok = isinstance(memory_decay, (int, float)) and not isinstance(memory_decay, bool)
    if not (ok and math.isfinite(memory_decay) and 0.0 <= memory_decay < 1.0):
        raise ValueError(f"`memory_decay` must lie in [0, 1), got {memory_decay!r}")
    if memory_decay > 0 and estimator != "gaussian_copula":
        raise ValueError(
            "`memory_decay` > 0 needs estimator='gaussian_copula' (soft binning's states are "
            f"rows of one batch, which no memory can carry), got estimator={estimator!r}"
        )
    for name, flag in (("gather", gather), ("null", null), ("validate", validate)):
        if not isinstance(flag, bool):
            raise TypeError(f"`{name}` must be a bool, got {type(flag).__name__}")
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"`dtype` must be torch.float32 or torch.float64, got {dtype!r}")
    _check_reduction(reduction)


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
    spec: GIBSpec | None = None,
    *,
    reducer: Any = None,
    dtype: torch.dtype = torch.float64,
    gather: bool = True,
    null: bool = True,
    validate: bool = True,
    memory: CellMoments | None = None,
    memory_decay: float = 0.0,
    reduction: str | None = None,
    **options: Any,
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
    spec : GIBSpec, optional
        What is computed: the surrogate (``estimator`` ``"gaussian_copula"`` or ``"binning"``,
        named after the exact estimator each relaxes), ``beta``, ``pmi``, ``q`` (``"cell"`` or
        ``"z"``), ``variant`` (Eq. 5 ``"synergy"`` or Eq. 17 ``"sum_vs_whole"``),
        ``temperature`` (towards 0 the memberships become hard and the surrogate tends to the
        exact estimator), ``bins``, ``z_bins``, the Gaussian options and ``task``; its
        ``z_code`` must be ``"soft"``. Default: built from ``**options``.
    reducer : gibloss.reduction.Reducer, optional
        A fitted reducer applied (without gradient) to ``x`` first. A fitted
        :class:`gibloss.PCAReducer` transforms a tensor on its device (a matrix product).
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
    **options
        The fields of :class:`GIBSpec` as keywords (``estimator`` defaults to
        ``"gaussian_copula"``), when no ``spec`` is given.

    Returns
    -------
    GIBTerms
        The complexity, the per-feature terms and shares, ``I(X; Q)``, the soft prediction term
        and ``H(Q)``. A batch of one row (the last batch of a ``DataLoader`` without
        ``drop_last``) carries no information about anything: every term is zero, on the graph
        of ``outputs`` (its gradient is zero), with a ``RuntimeWarning`` the first time.
    """
    spec = differentiable_spec(as_spec(spec, options, caller="gib_terms"), "gib_terms")
    variant, per_feature_out = _deprecated_reduction(reduction, spec.variant)
    check_training(
        estimator=spec.estimator,
        dtype=dtype,
        gather=gather,
        null=null,
        validate=validate,
        memory_decay=memory_decay,
    )
    check_reducer(reducer)
    _check_outputs(outputs, validate)
    y = check_targets(y, outputs.shape[0], validate)
    task, beta = spec.task, spec.beta
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
        if out.ndim == 1 and task == "auto":  # one logit: binary classifier or regression
            binary = single_logit_is_binary(y, task, check=validate)
            task = "classification" if binary else "regression"

        q_var = soft_q(
            out,
            y,
            pmi=spec.pmi,
            temperature=spec.temperature,
            bins=spec.z_bins,
            q=spec.q,
            validate=validate,
            task=task,
        )
        # The singles' bias: the same terms with the rows of (outputs, y) permuted, without
        # gradient. Q's rows permuted are Q of the permuted rows (its contingency table does not
        # change), so the surrogates reuse the features' codes and Q and batch the null with the
        # real terms where they can (the memory path); a memory is not updated by the null.
        perm = None
        if null:
            perm = torch.randperm(out.shape[0], generator=torch.Generator().manual_seed(0))
            perm = host_to_device(perm, out.device)  # the same permutation on every device
        if spec.estimator == "binning":
            whole, single, comp, diagnostics = binning_terms(feats, q_var, spec.bins, perm)
        else:
            whole, single, comp, diagnostics = gaussian_terms(
                feats,
                q_var,
                shrinkage=spec.shrinkage,
                ridge=spec.ridge,
                bias_correct=spec.bias_correct,
                memory=memory,
                memory_decay=memory_decay,
                null=perm,
            )
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
        if spec.estimator == "gaussian_copula":
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

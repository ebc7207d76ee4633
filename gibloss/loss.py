"""``GIBLoss``: a thin ``nn.Module`` over :func:`gibloss.functional.gib_terms`."""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Any

import torch
from torch import nn

from ._deprecation import warn_renamed
from .estimators._gaussian import CellMoments
from .functional import (
    GIBTerms,
    check_reducer,
    check_training,
    differentiable_spec,
    gib_terms,
    loss_dtype,
)
from .spec import GIBSpec, as_spec

__all__ = ["DEFAULT_MEMORY", "GIBLoss"]

#: Default ``memory`` of the Gaussian-copula GIBLoss: cell sums over about fifty batches.
DEFAULT_MEMORY = 0.98

#: The positional arguments of 0.1 after ``weight``, in order (deprecated).
_LEGACY_POSITIONAL = ("beta", "pmi", "temperature", "bins", "reduction", "reducer", "q", "memory")
_SPEC_FIELDS = frozenset(f.name for f in fields(GIBSpec) if f.name != "_given")


class GIBLoss(nn.Module):
    """The GIB complexity as a loss term: ``forward(x, outputs, y)`` is ``weight * complexity``.

    Measured, it acts as a confidence penalty (see Notes before choosing it as a regulariser).

    Add it to the task loss::

        gib = GIBLoss(estimator="gaussian_copula", weight=0.1)
        loss = F.cross_entropy(logits, y) + gib(features, logits, y)

    The gradient flows through the model outputs only; ``x`` is data (precomputed features, or
    raw inputs with a fitted ``reducer``). Under DDP / Accelerate every process sees the
    global-batch estimate and the averaged parameter gradients equal those of one process on the
    concatenated batch. The terms of the last call are kept (detached) in :attr:`last_terms` for
    logging, with no recomputation. Forward and backward run in torch on the device of
    ``outputs`` (see the "Performance" section of the loss guide).

    Every argument is validated here, at construction.

    Parameters
    ----------
    estimator : {"gaussian_copula", "binning"}, default "gaussian_copula"
        The surrogate, named after the exact estimator it relaxes. ``"binning"`` (soft binning)
        relaxes ``gib(..., estimator="binning", z_code="argmax")``; ``"gaussian_copula"``
        relaxes ``gib(..., estimator="gaussian_copula")``. ``"soft_binning"`` and ``"gcmi"``
        are deprecated spellings.
    weight : float, default 1.0
        Multiplier ``lambda`` of the complexity (finite, non-negative).
    spec : GIBSpec, optional
        What the loss computes (:class:`gibloss.spec.GIBSpec`, ``z_code="soft"``); give the same
        object to :func:`gibloss.gib` or the monitor to measure exactly this quantity. Its
        fields below (``estimator``, ``beta``, ``pmi``, ``temperature``, ``variant``,
        ``bins``, ``z_bins``, ``q``, ``shrinkage``, ``ridge``, ``bias_correct``, ``task``) may
        be given as keywords instead, which build one; both together are an error. The loss
        reads them as attributes (``loss.beta`` is ``loss.spec.beta``).
    beta : float, default 1.0
        The paper's trade-off; the complexity is divided by it.
    pmi : {"ratio", "ppmi", "literal", "none"}, default "ratio"
        Weighting of Q's cells.
    temperature : float, default 1.0
        Softness of Q (``softmax(logits / temperature)``); towards 0 it becomes the hard argmax.
    variant : {"synergy", "sum_vs_whole"}, default "synergy"
        Eq. 5 or Eq. 17, as in :func:`gibloss.gib`.
    bins : int, optional
        Bins per feature (binning; default 30).
    z_bins : int, optional
        Soft bins of a regression output and hard bins of a float target (default: ``bins``
        for binning, 30 for the Gaussian copula).
    reducer : gibloss.reduction.Reducer, optional
        A fitted reducer applied to ``x`` (without gradient) at every call.
    q : {"cell", "z"}, default "cell"
        Q's value: the cell (target, output code), or the output code alone under the PMI
        weights (``gib(..., q="z")``).
    memory : float, optional
        Gaussian copula only: decay of the remembered Gaussian cell sums (see
        :func:`gibloss.functional.gib_terms`, ``memory_decay``). Default 0.98 for the Gaussian
        copula (about fifty batches), 0 for binning. At batch sizes with fewer rows per Q
        cell than features, a batch-only estimate puts every term at its ``H(Q)`` bound. The
        remembered sums are in the loss's ``state_dict`` (``memory.s0`` ... ``memory.r2``, absent
        without a memory), so a checkpoint that saves the loss resumes training exactly.
        The memory is training state: every call reads it, only calls through which a gradient
        flows update it (see :meth:`terms`); :meth:`measure` never uses it. It belongs to one
        model: two models sharing one loss would mix their outputs' cells in one memory (with
        equal shapes nothing can tell), so give each model its own ``GIBLoss``, and call
        :meth:`reset_memory` when the features change. The sums are float64 whatever
        ``dtype``. With a memory, ``H(Q)`` (``last_terms.h_q``) is Q's entropy under the
        remembered measure, the bound of every term.
    shrinkage, ridge, bias_correct
        Gaussian-copula options, as in :class:`gibloss.GaussianCopulaEstimator`.
    dtype : torch.dtype, default torch.float64
        Computation dtype of the terms.
    gather : bool, default True
        Under ``torch.distributed``, estimate on the global batch.
    null : bool, default True
        Also compute the singles' shuffled null (``last_terms.diagnostics["single_null"]``).
    validate : bool, default True
        Check finiteness and labels at every call (a few host synchronisations), and warn when
        ``outputs`` look like probabilities rather than logits; switch off in a training loop
        once the data are known good.
    task : {"auto", "classification", "regression"}, default "auto"
        How a single output column is read. ``"auto"``: a binary classifier's logit (as for
        ``BCEWithLogitsLoss``) when ``y`` holds only the values 0 and 1, integer or float; a
        regression for other float targets (deciding reads ``y``'s values: one host
        synchronisation). Say ``"classification"`` or ``"regression"`` to choose, e.g. a
        regression whose float targets happen to be 0 and 1.
    reduction : str, optional
        Deprecated: ``"sum_vs_whole"`` is ``variant="sum_vs_whole"``; ``"none"`` returns the
        per-feature vector ``weight * (I(X^i;Q) + I(X^{-i};Q)) / (2 beta)``.

    Notes
    -----
    What it does, measured by this package (the loss guide, "What the regulariser does", gives
    the tables and commands):

    * For Eq. 5 the complexity is exactly ``whole * (1 - synergy_share) / (2 beta)``: half of
      what the features tell about Q, discounted by the synergy share (``last_terms``
      carries both). Lowering it lowers ``I(X; Q)``, which is bounded by ``H(Q)``: the cheapest
      way down is a less confident (higher-entropy) or more saturated Q, not features that tell
      less.
    * On scikit-learn's digits (``evaluation/bench_regulariser.py --quick``), no setting lowered
      its own held-out measure more than a confidence penalty (cross-entropy minus
      ``beta * H(softmax)``) at the same mean max-p without a larger accuracy cost.
    * In ``make demo`` (5 seeds, PGD-10 at eps 0.1) weights 0.3 and 1.0 changed robust accuracy
      by less than the study could see, and matched in confidence they are indistinguishable
      from the confidence penalty, while FGSM training (the positive control) was detected.

    Prefer a confidence penalty or label smoothing when the aim is calibration or a smoother
    output: they do the same thing for less. Use ``GIBLoss`` to study the GIB term itself, and
    read its ``measure`` on held-out rows beside the confidence it reached.

    Examples
    --------
    >>> import torch
    >>> import torch.nn.functional as F
    >>> from gibloss import GIBLoss
    >>> _ = torch.manual_seed(0)
    >>> model = torch.nn.Linear(4, 3)
    >>> x, y = torch.randn(32, 4), torch.randint(0, 3, (32,))
    >>> gib = GIBLoss(weight=0.1)
    >>> logits = model(x)
    >>> loss = F.cross_entropy(logits, y) + gib(x, logits, y)
    >>> loss.backward()
    >>> sorted(gib.last_terms.as_dict())[:3]
    ['complement', 'complexity', 'diagnostics']
    """

    def __init__(
        self,
        estimator: str | None = None,
        weight: float = 1.0,
        *legacy: Any,
        spec: GIBSpec | None = None,
        memory: float | None = None,
        reducer: Any = None,
        dtype: torch.dtype = torch.float64,
        gather: bool = True,
        null: bool = True,
        validate: bool = True,
        reduction: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__()
        if legacy:  # 0.1 took these by position
            if len(legacy) > len(_LEGACY_POSITIONAL):
                raise TypeError(
                    f"GIBLoss() takes at most {2 + len(_LEGACY_POSITIONAL)} positional "
                    f"arguments but {2 + len(legacy)} were given"
                )
            names = _LEGACY_POSITIONAL[: len(legacy)]
            warn_renamed(
                f"passing {', '.join(names)} of GIBLoss() by position",
                f"keywords ({', '.join(f'{n}=...' for n in names)})",
            )
            legacy_values = dict(zip(names, legacy, strict=True))
            memory = legacy_values.pop("memory", memory)
            reducer = legacy_values.pop("reducer", reducer)
            reduction = legacy_values.pop("reduction", reduction)
            options = {**legacy_values, **options}
        if estimator is not None:
            options["estimator"] = estimator
        self.spec = differentiable_spec(
            as_spec(spec, options, caller="GIBLoss", stacklevel=5), "GIBLoss"
        )
        if (
            not isinstance(weight, (int, float))
            or isinstance(weight, bool)
            or not math.isfinite(weight)
            or weight < 0
        ):
            raise ValueError(f"`weight` must be a non-negative finite number, got {weight!r}")
        check_reducer(reducer)
        if memory is None:  # the default: a memory where it applies
            memory = DEFAULT_MEMORY if self.spec.estimator == "gaussian_copula" else 0.0
        check_training(
            estimator=self.spec.estimator,
            dtype=dtype,
            gather=gather,
            null=null,
            validate=validate,
            memory_decay=memory,
            reduction=reduction,  # validated here, mapped (with its warning) at each call
        )
        self.weight = float(weight)
        self.memory = float(memory)
        self.reducer = reducer
        self.dtype = dtype
        self.gather = gather
        self.null = null
        self.validate = validate
        self.reduction = reduction
        self._moments: CellMoments | None = None
        self.last_terms: GIBTerms | None = None

    def __getattr__(self, name: str) -> Any:
        # the spec's options read as the loss's own attributes (loss.beta, loss.estimator...)
        if name in _SPEC_FIELDS:
            return getattr(self.__dict__["spec"], name)
        return super().__getattr__(name)

    def reset_memory(self) -> None:
        """Forget the Gaussian cell sums remembered from earlier batches."""
        self._moments = None

    # The memory travels in ``state_dict`` as tensors ``memory.s0`` ... ``memory.r2`` when there
    # is one, and not at all when there is none, so a state dict stays loadable by strict
    # ``load_state_dict`` of older checkpoints and savable with safetensors (as BatchNorm's
    # running statistics, through the same two nn.Module hooks).
    def _save_to_state_dict(
        self, destination: dict[str, Any], prefix: str, keep_vars: bool
    ) -> None:
        super()._save_to_state_dict(destination, prefix, keep_vars)
        if self._moments is not None:  # own storages: the sums are views of one packed tensor
            for f in fields(CellMoments):
                value = getattr(self._moments, f.name).detach()
                destination[f"{prefix}memory.{f.name}"] = value.clone(
                    memory_format=torch.contiguous_format
                )

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        keys = {f.name: f"{prefix}memory.{f.name}" for f in fields(CellMoments)}
        found = {name: key in state_dict for name, key in keys.items()}
        if all(found.values()):
            self._moments = CellMoments(**{name: state_dict[key] for name, key in keys.items()})
        elif any(found.values()):
            error_msgs.append(
                f"a GIBLoss memory needs all of {sorted(keys.values())}, got "
                f"{sorted(k for n, k in keys.items() if found[n])}"
            )
        else:
            self._moments = None  # the saved loss had no memory
        rest = {k: v for k, v in state_dict.items() if k not in keys.values()}
        super()._load_from_state_dict(
            rest, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def _gib_options(self) -> dict[str, Any]:
        """The keyword arguments of :func:`gibloss.functional.gib_terms` besides the spec."""
        return {
            "spec": self.spec,
            "reducer": self.reducer,
            "dtype": self.dtype,
            "gather": self.gather,
            "null": self.null,
            "validate": self.validate,
            "reduction": self.reduction,
        }

    def terms(self, x: Any, outputs: torch.Tensor, y: torch.Tensor) -> GIBTerms:
        """All differentiable terms of one call (no weight applied).

        The memory is read by every call and written only where a gradient flows (grad mode on
        and ``outputs`` requiring grad), as BatchNorm's running statistics change only in
        training: a validation call under ``torch.no_grad()`` or ``torch.inference_mode()``
        leaves it as it was, and so does a batch of one row.
        """
        terms = gib_terms(
            x,
            outputs,
            y,
            memory=self._moments,
            memory_decay=self.memory,
            **self._gib_options(),
        )
        remembered = terms.diagnostics.pop("memory", None)
        training = torch.is_grad_enabled() and outputs.requires_grad
        if remembered is not None and training:
            self._moments = remembered
        return terms

    def measure(self, x: Any, outputs: torch.Tensor, y: torch.Tensor) -> GIBTerms:
        """The value of the quantity this loss relaxes, without gradient, on all rows given.

        Q is the stochastic encoder ``softmax(outputs / temperature)`` (soft bins for a regression
        output); the terms are its exact plug-in (soft binning) or Gaussian-copula GIB, from
        these rows alone (no memory of earlier batches; a binned partition whose rows are all
        distinct contributes ``H(Q)``, as with hard codes). Nothing is gathered across
        processes: pass the rows you want measured (a held-out probe, the training set). With
        hard memberships (``temperature → 0``) it tends to the exact
        ``gibloss.gib(x, outputs, y, estimator=..., z_code="argmax")``; for any temperature it
        equals ``gibloss.gib(..., z_code="soft", temperature=...)``. The weight is not applied.

        Returns
        -------
        GIBTerms
            Detached terms (bits).
        """
        with torch.no_grad():
            options = {**self._gib_options(), "gather": False}
            terms = gib_terms(x, outputs.detach(), y, **options)
        return terms.detach()

    def forward(self, x: Any, outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``weight * complexity`` in the dtype of ``outputs`` (at least float32)."""
        terms = self.terms(x, outputs, y)
        self.last_terms = terms.detach()
        return (self.weight * terms.complexity).to(loss_dtype(outputs))

    def extra_repr(self) -> str:
        return (
            f"estimator={self.estimator!r}, weight={self.weight}, beta={self.beta}, "
            f"pmi={self.pmi!r}, temperature={self.temperature}, variant={self.variant!r}, "
            f"bins={self.bins}, z_bins={self.z_bins}, q={self.q!r}, memory={self.memory}"
        )

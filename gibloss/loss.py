"""``GIBLoss``: a thin ``nn.Module`` over :func:`gibloss.functional.gib_terms`."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from .estimators._gaussian import CellMoments
from .functional import ESTIMATORS, GIBTerms, check_options, gib_terms

__all__ = ["DEFAULT_MEMORY", "GIBLoss"]

#: Default ``memory`` of the Gaussian-copula GIBLoss: cell sums over about fifty batches.
DEFAULT_MEMORY = 0.98

_ALIASES = {
    "gcmi": "gaussian_copula",
    "gaussian_copula": "gaussian_copula",
    "soft_binning": "soft_binning",
}


class GIBLoss(nn.Module):
    """Trainable GIB regulariser: ``forward(x, outputs, y)`` returns ``weight * complexity``.

    Add it to the task loss::

        gib = GIBLoss(estimator="gaussian_copula", weight=0.1)
        loss = F.cross_entropy(logits, y) + gib(features, logits, y)

    The gradient flows through the model outputs only; ``x`` is data (precomputed features, or
    raw inputs with a fitted ``reducer``). Under DDP / Accelerate every process sees the
    global-batch estimate and the averaged parameter gradients equal those of one process on the
    concatenated batch. The terms of the last call are kept (detached) in :attr:`last_terms` for
    logging, with no recomputation.

    Parameters
    ----------
    estimator : {"gaussian_copula", "soft_binning"}, default "gaussian_copula"
        The surrogate (``"gcmi"`` is accepted as an alias). Soft binning relaxes the exact
        ``gib(..., estimator="binning", z_code="argmax")``; the Gaussian copula relaxes
        ``gib(..., estimator="gcmi")``.
    weight : float, default 1.0
        Multiplier ``lambda`` of the complexity.
    beta : float, default 1.0
        The paper's trade-off; the complexity is divided by it.
    pmi : {"ratio", "ppmi", "literal", "none"}, default "ratio"
        Weighting of Q's cells.
    temperature : float, default 1.0
        Softness of Q (``softmax(logits / temperature)``); towards 0 it becomes the hard argmax.
    bins : int, default 30
        Bins per feature (soft binning) and for regression outputs / targets.
    reduction : {"mean", "sum_vs_whole", "none"}, default "mean"
        Eq. 5, Eq. 17, or the per-feature vector (see :func:`gibloss.functional.gib_complexity`).
    reducer : gibloss.reduction.Reducer, optional
        A fitted reducer applied to ``x`` (without gradient) at every call.
    q : {"cell", "z"}, default "cell"
        Q's value: the cell (target, output code), or the output code alone under the PMI
        weights (``gib(..., q="z")``).
    memory : float, optional
        Gaussian copula only: decay of the remembered Gaussian cell sums (see
        :func:`gibloss.functional.gib_terms`, ``memory_decay``). Default 0.98 for the Gaussian
        copula (about fifty batches), 0 for soft binning. At batch sizes with fewer rows per Q
        cell than features, a batch-only estimate puts every term at its ``H(Q)`` bound. The
        memory is not part of ``state_dict``: after a resume it refills within about
        ``1 / (1 - memory)`` steps. :meth:`measure` never uses it.
    **options
        ``shrinkage``, ``ridge``, ``bias_correct``, ``dtype``, ``gather``, ``null`` (see
        :func:`gibloss.functional.gib_terms`).

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
        estimator: str = "gaussian_copula",
        weight: float = 1.0,
        beta: float = 1.0,
        pmi: str = "ratio",
        temperature: float = 1.0,
        bins: int = 30,
        reduction: str = "mean",
        reducer: Any = None,
        q: str = "cell",
        memory: float | None = None,
        **options: Any,
    ) -> None:
        super().__init__()
        if estimator not in _ALIASES:
            raise ValueError(
                f"`estimator` must be one of {ESTIMATORS} (or 'gcmi'), got {estimator!r}"
            )
        allowed = {"shrinkage", "ridge", "bias_correct", "dtype", "gather", "null"}
        unknown = set(options) - allowed
        if unknown:
            raise TypeError(
                f"unknown GIBLoss option(s) {sorted(unknown)}; allowed: {sorted(allowed)}"
            )
        if (
            not isinstance(weight, (int, float))
            or isinstance(weight, bool)
            or not math.isfinite(weight)
            or weight < 0
        ):
            raise ValueError(f"`weight` must be a non-negative finite number, got {weight!r}")
        if memory is None:  # the default: a memory where it applies
            memory = DEFAULT_MEMORY if _ALIASES.get(estimator) == "gaussian_copula" else 0.0
        check_options(
            memory_decay=memory,
            estimator=_ALIASES[estimator],
            beta=beta,
            pmi=pmi,
            temperature=temperature,
            bins=bins,
            reduction=reduction,
            q=q,
            **{k: v for k, v in options.items() if k in ("shrinkage", "ridge")},
        )
        self.estimator = _ALIASES[estimator]
        self.weight = float(weight)
        self.beta = beta
        self.pmi = pmi
        self.temperature = temperature
        self.bins = bins
        self.reduction = reduction
        self.reducer = reducer
        self.q = q
        self.memory = float(memory)
        self._moments: CellMoments | None = None
        self.options = options
        self.last_terms: GIBTerms | None = None

    def reset_memory(self) -> None:
        """Forget the Gaussian cell sums remembered from earlier batches."""
        self._moments = None

    def _gib_options(self) -> dict[str, Any]:
        """The keyword arguments of :func:`gibloss.functional.gib_terms` for this loss."""
        return {
            "estimator": self.estimator,
            "beta": self.beta,
            "pmi": self.pmi,
            "temperature": self.temperature,
            "bins": self.bins,
            "reduction": self.reduction,
            "reducer": self.reducer,
            "q": self.q,
            **self.options,
        }

    def terms(self, x: Any, outputs: torch.Tensor, y: torch.Tensor) -> GIBTerms:
        """All differentiable terms of one call (no weight applied); updates the memory."""
        terms = gib_terms(
            x,
            outputs,
            y,
            memory=self._moments,
            memory_decay=self.memory,
            **self._gib_options(),
        )
        if self.memory > 0:
            self._moments = terms.diagnostics.pop("memory")
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
            terms = gib_terms(x, outputs.detach(), y, **{**self._gib_options(), "gather": False})
        return terms.detach()

    def forward(self, x: Any, outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``weight * complexity`` in the dtype of ``outputs`` (at least float32)."""
        terms = self.terms(x, outputs, y)
        self.last_terms = terms.detach()
        out_dtype = (
            outputs.dtype if outputs.dtype in (torch.float32, torch.float64) else torch.float32
        )
        return (self.weight * terms.complexity).to(out_dtype)

    def extra_repr(self) -> str:
        return (
            f"estimator={self.estimator!r}, weight={self.weight}, beta={self.beta}, "
            f"pmi={self.pmi!r}, temperature={self.temperature}, bins={self.bins}, "
            f"reduction={self.reduction!r}, q={self.q!r}, memory={self.memory}"
        )

"""The result types: exact estimates (:class:`GIBResult`, :class:`IBResult`, numpy) and
differentiable ones (:class:`GIBTerms`, torch, on the graph of the outputs).

All three carry the split of the complexity into ``I(X;Q)`` and the synergy share
(:mod:`gibloss.split`), computed from their terms.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from .records import jsonable
from .split import synergy_split

__all__ = ["GIBResult", "GIBTerms", "IBResult"]


@dataclass
class GIBResult:
    """Terms of the Generalized Information Bottleneck (bits).

    Attributes
    ----------
    prediction : float
        ``I(Z; Y)`` with Z coded by ``z_code``.
    complexity : float
        ``(1/(2 beta N)) sum_i [I(X^{-i}; Q) + I(X^i; Q)]`` (Eq. 5), or
        ``(1/beta) sum_i I(X^i; Q)`` for ``variant="sum_vs_whole"`` (Eq. 17).
    objective : float
        ``prediction - complexity``.
    single : numpy.ndarray
        ``(N,)`` ``I(X^i; Q)``.
    complement : numpy.ndarray
        ``(N,)`` ``I(X^{-i}; Q)``.
    whole : float
        ``I(X; Q)``.
    settings : dict
        The resolved estimator, ``z_code``, ``pmi``, ``q``, ``beta``, ``variant``, ``sampling``.
    diagnostics : dict
        ``h_q`` (weighted entropy of Q), ``n_z_codes``, ``n_q_cells``, ``weights_ess`` and the
        estimator's own (for binning: ``unique_row_fraction`` of X, ``saturated`` complements).
    interaction : numpy.ndarray
        ``(N,)`` the synergy map, the interaction information of each feature with the rest
        about Q: ``II_i = I(X; Q) - I(X^{-i}; Q) - I(X^i; Q)`` (computed from the terms above).
        Positive: feature ``i`` and its complement tell more together than apart (synergy);
        negative: what they tell overlaps (redundancy). Eq. 5's complexity is
        ``(1/(2 beta N)) sum_i (I(X; Q) - II_i)``.
    synergy_share : float
        ``s = mean_i II_i / I(X; Q)`` (0 when ``I(X; Q) <= 0``): for Eq. 5,
        ``complexity == whole * (1 - synergy_share) / (2 beta)`` exactly whenever
        ``whole > 0`` (see :mod:`gibloss.split`; a bias-corrected ``whole`` can reach 0 while
        other terms do not, and then the identity does not hold).
    total_effect : numpy.ndarray
        ``(N,)`` ``I(X; Q) - I(X^{-i}; Q) = I(X^i; Q | X^{-i})``: what feature ``i`` adds to
        the rest; ``H(Q | X^{-i})`` when Q is a function of X (the influence of bit ``i`` for a
        Boolean function of uniform bits).
    """

    prediction: float
    complexity: float
    objective: float
    single: np.ndarray
    complement: np.ndarray
    whole: float
    settings: dict[str, Any] = field(default_factory=dict)
    diagnostics: dict[str, Any] = field(default_factory=dict)
    interaction: np.ndarray = field(init=False)
    synergy_share: float = field(init=False)
    total_effect: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        single = np.asarray(self.single, dtype=float)
        complement = np.asarray(self.complement, dtype=float)
        interaction, share, total = synergy_split(float(self.whole), single, complement)
        self.interaction = np.asarray(interaction, dtype=float)
        self.synergy_share = float(share)
        self.total_effect = np.asarray(total, dtype=float)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dictionary (arrays become lists)."""
        return jsonable(asdict(self))

    @classmethod
    def from_terms(cls, terms: GIBTerms, settings: dict[str, Any]) -> GIBResult:
        """The values of one differentiable evaluation (detached, on the host) as a result."""
        prediction = float(terms.prediction)
        return cls(
            prediction=prediction,
            complexity=float(terms.complexity),
            objective=prediction - float(terms.complexity),
            single=terms.single.detach().cpu().numpy(),
            complement=terms.complement.detach().cpu().numpy(),
            whole=float(terms.whole),
            settings=settings,
            diagnostics={"h_q": float(terms.h_q)},
        )


@dataclass
class IBResult:
    """Terms of the Information Bottleneck for one representation ``T`` (bits).

    Attributes
    ----------
    complexity : float
        ``I(X; T)``.
    prediction : float
        ``I(T; Y)``.
    diagnostics : dict
        For binning, ``unique_row_fraction`` of ``T`` (near 1 means ``I(X; T)`` is ``H(T)`` and
        saturated).
    """

    complexity: float
    prediction: float
    diagnostics: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dictionary."""
        return jsonable(asdict(self))



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

"""gibloss: the Generalized Information Bottleneck, measured exactly and trained with.

Public API
----------
entropy, mutual_information
    Exact estimators (``"binning"``, ``"kde"``, ``"gcmi"`` or an estimator object).
synergy, gib, ib, pmi_weights, build_q
    The paper's measures.
GIBLoss, functional
    The differentiable GIB regulariser (soft binning and Gaussian copula surrogates).
PCAReducer, KernelPCAReducer
    Input reduction fitted once.
"""

from . import functional
from .estimators import (
    BinningEstimator,
    Estimator,
    GaussianCopulaEstimator,
    KDEEstimator,
    get_estimator,
)
from .loss import GIBLoss
from .measures import GIBResult, IBResult, entropy, gib, ib, mutual_information, synergy
from .pmi import QVariable, build_q, pmi_weights
from .reduction import KernelPCAReducer, PCAReducer

__version__ = "0.1.0"

__all__ = [
    "BinningEstimator",
    "Estimator",
    "GIBLoss",
    "GIBResult",
    "GaussianCopulaEstimator",
    "IBResult",
    "KDEEstimator",
    "KernelPCAReducer",
    "PCAReducer",
    "QVariable",
    "build_q",
    "entropy",
    "functional",
    "get_estimator",
    "gib",
    "ib",
    "mutual_information",
    "pmi_weights",
    "synergy",
    "__version__",
]

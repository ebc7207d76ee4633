"""gibloss: the Generalized Information Bottleneck, measured exactly and trained with.

Public API
----------
entropy, mutual_information
    Exact estimators (``"binning"``, ``"kde"``, ``"gaussian_copula"``, ``"ksg"`` or an estimator
    object: BinningEstimator, KDEEstimator, GaussianCopulaEstimator, KSGEstimator, Estimator;
    get_estimator builds one by name).
synergy, gib, ib, pmi_weights, build_q, GIBResult, IBResult, QVariable
    The paper's measures and their results; :mod:`gibloss.split` splits the GIB complexity into
    I(X;Q) and the synergy share.
GIBSpec
    One validated description of a GIB computation (estimator, beta, Q, equation), taken by
    gib, GIBLoss, functional.gib_terms and the monitor: one object, one quantity.
GIBLoss, functional
    The differentiable GIB regulariser (soft binning and Gaussian copula surrogates);
    :mod:`gibloss.probes` the synergy share of a prediction on probes where rules differ.
InformationPlaneMonitor, recompute_run_range, read_records, summary_table
    Information-plane monitoring, its records and their summary.
plot_information_plane, plot_complexity_split, plot_feature_terms, compression
    Figures and the compression-phase measure.
PCAReducer, KernelPCAReducer
    Input reduction fitted once.
"""

from typing import TYPE_CHECKING, Any

from . import functional
from .estimators import (
    BinningEstimator,
    Estimator,
    GaussianCopulaEstimator,
    KDEEstimator,
    KSGEstimator,
    get_estimator,
)
from .information import entropy, ib, mutual_information, synergy
from .loss import GIBLoss
from .measures import gib
from .monitor import InformationPlaneMonitor, recompute_run_range
from .phases import compression
from .pmi import QVariable, build_q, pmi_weights
from .records import read_records
from .reduction import KernelPCAReducer, PCAReducer
from .results import GIBResult, IBResult
from .spec import GIBSpec

# Plotting (matplotlib) and the CLI's table are imported on first use, so that
# `import gibloss` costs little more than `import torch` (scikit-learn and scipy likewise load
# only when an estimator or reducer needs them).
_LAZY = {
    "plot_complexity_split": "plotting",
    "plot_feature_terms": "plotting",
    "plot_information_plane": "plotting",
    "summary_table": "summary",
}

if TYPE_CHECKING:  # pragma: no cover
    from .plotting import plot_complexity_split, plot_feature_terms, plot_information_plane
    from .summary import summary_table


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gibloss' has no attribute {name!r}")


__version__ = "0.2.0"

__all__ = [
    "BinningEstimator",
    "Estimator",
    "GIBLoss",
    "GIBResult",
    "GIBSpec",
    "GaussianCopulaEstimator",
    "IBResult",
    "InformationPlaneMonitor",
    "KDEEstimator",
    "KSGEstimator",
    "KernelPCAReducer",
    "PCAReducer",
    "QVariable",
    "build_q",
    "compression",
    "entropy",
    "functional",
    "get_estimator",
    "gib",
    "ib",
    "mutual_information",
    "plot_complexity_split",
    "plot_feature_terms",
    "plot_information_plane",
    "pmi_weights",
    "read_records",
    "recompute_run_range",
    "summary_table",
    "synergy",
    "__version__",
]

"""Exact (non-differentiable) information estimators behind one interface.

``"binning"``, ``"kde"``, ``"gcmi"`` (alias ``"gaussian_copula"``) and ``"ksg"`` are shortcuts
for the default-configured objects; :func:`get_estimator` resolves either form.
"""

from __future__ import annotations

from typing import Any

from .base import Estimator, FeatureTerms
from .binning import BinningEstimator, unique_row_fraction
from .gcmi import GaussianCopulaEstimator, copula_normalize
from .kde import KDEEstimator
from .ksg import KSGEstimator

__all__ = [
    "BinningEstimator",
    "Estimator",
    "FeatureTerms",
    "GaussianCopulaEstimator",
    "KDEEstimator",
    "KSGEstimator",
    "copula_normalize",
    "get_estimator",
    "unique_row_fraction",
]

_REGISTRY: dict[str, type[Estimator]] = {
    "binning": BinningEstimator,
    "kde": KDEEstimator,
    "gcmi": GaussianCopulaEstimator,
    "gaussian_copula": GaussianCopulaEstimator,
    "ksg": KSGEstimator,
}


def get_estimator(estimator: str | Estimator = "binning", **options: Any) -> Estimator:
    """Resolve an estimator name (with keyword options) or pass an estimator object through.

    Parameters
    ----------
    estimator : {"binning", "kde", "gcmi", "gaussian_copula", "ksg"} or Estimator
        A name, or an already-configured estimator object.
    **options
        Hyper-parameters of the named estimator (e.g. ``bins=30`` for binning). Not allowed with an
        object, which already carries its own.

    Returns
    -------
    Estimator

    Examples
    --------
    >>> from gibloss.estimators import get_estimator
    >>> get_estimator("binning", bins=10)
    BinningEstimator(bins=10, strategy='uniform', range=None, width=None)
    """
    if isinstance(estimator, Estimator):
        if options:
            raise TypeError(
                f"options {sorted(options)} cannot be combined with an estimator object; "
                "set them on the object instead"
            )
        return estimator
    if not isinstance(estimator, str):
        raise TypeError(
            f"`estimator` must be a name {sorted(_REGISTRY)} or an Estimator, "
            f"got {type(estimator).__name__}"
        )
    try:
        cls = _REGISTRY[estimator]
    except KeyError:
        raise ValueError(
            f"`estimator` must be one of {sorted(_REGISTRY)}, got {estimator!r}"
        ) from None
    try:
        return cls(**options)
    except TypeError as err:
        raise TypeError(f"bad option for estimator {estimator!r}: {err}") from None

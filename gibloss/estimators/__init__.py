"""Exact (non-differentiable) information estimators behind one interface.

``"binning"``, ``"kde"``, ``"gaussian_copula"`` and ``"ksg"`` are shortcuts for the
default-configured objects; :func:`get_estimator` resolves either form. The same names select
the differentiable surrogates of :class:`gibloss.GIBLoss` (``"binning"``, ``"gaussian_copula"``).
:func:`resolve_name` is the one place where names, and the deprecated spellings ``"gcmi"`` and
``"soft_binning"``, are resolved.
"""

from __future__ import annotations

import warnings
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
    "ESTIMATORS",
    "copula_normalize",
    "get_estimator",
    "name_aliases",
    "resolve_name",
    "unique_row_fraction",
]

_REGISTRY: dict[str, type[Estimator]] = {
    "binning": BinningEstimator,
    "kde": KDEEstimator,
    "gaussian_copula": GaussianCopulaEstimator,
    "ksg": KSGEstimator,
}

#: The estimator names, exact and differentiable alike.
ESTIMATORS = tuple(_REGISTRY)

#: Spellings of gibloss 0.1, accepted until 0.3 with a ``DeprecationWarning``.
_DEPRECATED_NAMES = {"gcmi": "gaussian_copula", "soft_binning": "binning"}


def resolve_name(
    name: Any,
    *,
    choices: tuple[str, ...] = ESTIMATORS,
    argument: str = "estimator",
    stacklevel: int = 3,
) -> str:
    """The canonical estimator name of ``name``; a deprecated spelling warns and is mapped.

    Parameters
    ----------
    name : str
        ``"binning"``, ``"kde"``, ``"gaussian_copula"``, ``"ksg"``, or a deprecated spelling
        (``"gcmi"``, ``"soft_binning"``).
    choices : tuple of str
        The names allowed where it is used (the loss allows ``"binning"`` and
        ``"gaussian_copula"``).
    argument : str
        The argument's name, for the messages.
    stacklevel : int
        Passed to :func:`warnings.warn` (3: the caller of the function that calls this).

    Raises
    ------
    TypeError
        When ``name`` is not a string.
    ValueError
        When it is not one of ``choices``.

    Examples
    --------
    >>> from gibloss.estimators import resolve_name
    >>> resolve_name("gaussian_copula")
    'gaussian_copula'
    """
    if not isinstance(name, str):
        raise TypeError(f"`{argument}` must be one of {choices}, got {type(name).__name__}")
    if name in _DEPRECATED_NAMES:
        new = _DEPRECATED_NAMES[name]
        warnings.warn(
            f"{argument}={name!r} is deprecated and will be removed in gibloss 0.3; "
            f"use {argument}={new!r}",
            DeprecationWarning,
            stacklevel=stacklevel,
        )
        name = new
    if name not in choices:
        raise ValueError(f"`{argument}` must be one of {choices}, got {name!r}")
    return name


def name_aliases(name: str) -> tuple[str, ...]:
    """``name`` followed by every spelling that resolves to it (to read records of 0.1)."""
    canonical = _DEPRECATED_NAMES.get(name, name)
    return (canonical, *(old for old, new in _DEPRECATED_NAMES.items() if new == canonical))


def get_estimator(
    estimator: str | Estimator = "binning", *, stacklevel: int = 4, **options: Any
) -> Estimator:
    """Resolve an estimator name (with keyword options) or pass an estimator object through.

    Parameters
    ----------
    estimator : {"binning", "kde", "gaussian_copula", "ksg"} or Estimator
        A name (see :func:`resolve_name`), or an already-configured estimator object.
    **options
        Hyper-parameters of the named estimator (e.g. ``bins=30`` for binning). Not allowed with an
        object, which already carries its own.
    stacklevel : int
        Of the deprecation warning for an old name (4: the caller of the public function that
        calls this).

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
            f"`estimator` must be a name {ESTIMATORS} or an Estimator, "
            f"got {type(estimator).__name__}"
        )
    estimator = resolve_name(estimator, stacklevel=stacklevel)
    cls = _REGISTRY[estimator]
    try:
        return cls(**options)
    except TypeError as err:
        raise TypeError(f"bad option for estimator {estimator!r}: {err}") from None

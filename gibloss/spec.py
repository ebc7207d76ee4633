"""``GIBSpec``: one frozen, validated description of a GIB computation.

Which quantity is computed, as opposed to how it is reported: the estimator of the ``2N + 1``
terms and its hyper-parameters, ``beta``, Q (its PMI weighting, its value, how Z is coded and how
softly) and the equation (``variant``). :func:`gibloss.gib`, :func:`gibloss.functional.gib_terms`,
:class:`gibloss.GIBLoss` and :class:`gibloss.InformationPlaneMonitor` all take one (``spec=``;
their keyword options stay as a convenience that builds one), so a loss and the monitor that
watches it are given the same object and measure the same quantity. How an estimate is reported
(corrections against a shuffled null, bootstrap intervals, sampling) stays with the call.

Every option is validated when the spec is made, before any data is seen, in the spirit of
scikit-learn's parameter constraints: a bad value raises a ``ValueError``/``TypeError`` naming the
argument and what was expected, and an option that the chosen estimator does not take is an
error, not silently ignored.

Examples
--------
>>> from gibloss.spec import GIBSpec
>>> spec = GIBSpec(estimator="binning", temperature=0.5)
>>> spec.bins, spec.z_bins, spec.differentiable
(30, 30, True)
>>> spec.replace(estimator="gaussian_copula").shrinkage
0.1
>>> GIBSpec(estimator="kde", z_code="argmax", bins=10)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ValueError: `bins` sets the feature bins of estimator='binning', got bins=10 ...
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from ._validation import check_task
from .estimators import ESTIMATORS as EXACT_ESTIMATORS
from .estimators import resolve_name
from .q import PMI_MODES, Q_KINDS, Z_CODES

__all__ = ["DIFFERENTIABLE", "GIBSpec", "VARIANTS", "Z_CODINGS", "as_spec"]

#: The estimators with a differentiable surrogate (``z_code="soft"``).
DIFFERENTIABLE = ("binning", "gaussian_copula")
#: Eq. 5 (feature-wise synergy) or Eq. 17 (sum of singles against the whole).
VARIANTS = ("synergy", "sum_vs_whole")
#: How Z is coded: hard codes of the exact estimators, ``"auto"`` (their default per estimator),
#: or ``"soft"``, the stochastic encoder ``softmax(z / temperature)`` that the loss trains.
Z_CODINGS = ("auto", *Z_CODES, "soft")

#: The hyper-parameters of each estimator, with their defaults.
_ESTIMATOR_OPTIONS: dict[str, dict[str, Any]] = {
    "binning": {"bins": 30},
    "gaussian_copula": {"shrinkage": 0.1, "ridge": 1e-6, "bias_correct": True},
    "kde": {},
    "ksg": {},
}


def _is_real(v: Any) -> bool:
    return isinstance(v, (int, float, np.floating)) and not isinstance(v, bool) and math.isfinite(v)


def _is_count(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1


@dataclass(frozen=True)
class GIBSpec:
    """What GIB quantity is computed: estimator, beta, Q and the equation.

    Parameters
    ----------
    estimator : {"gaussian_copula", "binning", "kde", "ksg"}
        Estimator of ``I(X; Q)``, ``I(X^i; Q)`` and ``I(X^{-i}; Q)``. ``"gcmi"`` and
        ``"soft_binning"`` are deprecated spellings.
    beta : float
        The complexity is divided by ``beta`` (positive, finite).
    pmi : {"ratio", "ppmi", "literal", "none"}, optional
        Weighting of Q's cells; default ``"ratio"`` (``"none"`` with ``q="pmi"``).
    q : {"cell", "pmi", "z"}
        Q's value: the cell (target code, output code), the value of the pointwise log-ratio, or
        the output code alone under the PMI weights. ``"pmi"`` is exact-only.
    z_code : {"soft", "auto", "probs", "logits", "argmax", "binned"}
        How Z is coded. ``"soft"`` (default) is the stochastic encoder
        ``Q ~ softmax(z / temperature)`` (soft bins of a regression output): the quantity
        :class:`gibloss.GIBLoss` trains and ``gib(..., spec=spec)`` measures exactly; it needs a
        differentiable estimator (``"binning"``, ``"gaussian_copula"``) and ``q`` ``"cell"`` or
        ``"z"``. The others are the exact estimator's hard codes (see :func:`gibloss.gib`).
    variant : {"synergy", "sum_vs_whole"}
        Eq. 5 (feature-wise synergy) or Eq. 17.
    temperature : float
        Softness of ``z_code="soft"`` (positive, finite; ignored by the hard codes).
    bins : int, optional
        Feature bins of ``estimator="binning"`` (default 30). Other estimators take none.
    z_bins : int, optional
        Bins of Z (soft bins of a regression output, ``"probs"``/``"logits"``/``"binned"``
        codes) and of a float target. Default: ``bins`` for binning (features and outputs binned
        alike, as the paper does), 30 otherwise.
    shrinkage, ridge, bias_correct : optional
        Gaussian-copula options (defaults 0.1, 1e-6, True; see
        :class:`gibloss.GaussianCopulaEstimator`). Other estimators take none.
    task : {"auto", "classification", "regression"}
        How a single output column is read (see :func:`gibloss.gib`).

    Raises
    ------
    ValueError, TypeError
        At construction, naming the first argument that is out of its range, not one of its
        choices, or not taken by the estimator.
    """

    estimator: str = "gaussian_copula"
    beta: float = 1.0
    pmi: str | None = None
    q: str = "cell"
    z_code: str = "soft"
    variant: str = "synergy"
    temperature: float = 1.0
    bins: int | None = None
    z_bins: int | None = None
    shrinkage: float | None = None
    ridge: float | None = None
    bias_correct: bool | None = None
    task: str = "auto"
    _given: tuple[tuple[str, Any], ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        given = tuple(
            (f.name, getattr(self, f.name)) for f in fields(self) if f.name != "_given"
        )
        set_ = object.__setattr__  # frozen: resolved defaults are written once, here
        set_(self, "_given", given)
        estimator = resolve_name(self.estimator, choices=EXACT_ESTIMATORS, stacklevel=5)
        set_(self, "estimator", estimator)
        if not (_is_real(self.beta) and self.beta > 0):
            raise ValueError(f"`beta` must be a positive finite number, got {self.beta!r}")
        if self.q not in Q_KINDS:
            raise ValueError(f"`q` must be one of {Q_KINDS}, got {self.q!r}")
        if self.pmi is None:
            set_(self, "pmi", "none" if self.q == "pmi" else "ratio")
        elif self.pmi not in PMI_MODES:
            raise ValueError(f"`pmi` must be one of {PMI_MODES}, got {self.pmi!r}")
        if self.z_code not in Z_CODINGS:
            raise ValueError(f"`z_code` must be one of {Z_CODINGS}, got {self.z_code!r}")
        if self.variant not in VARIANTS:
            raise ValueError(f"`variant` must be one of {VARIANTS}, got {self.variant!r}")
        if not (_is_real(self.temperature) and self.temperature > 0):
            raise ValueError(
                f"`temperature` must be a positive finite number, got {self.temperature!r}"
            )
        check_task(self.task)
        if self.z_code == "soft":
            if estimator not in DIFFERENTIABLE:
                raise ValueError(
                    f"`z_code`='soft' needs an estimator with a differentiable surrogate "
                    f"{DIFFERENTIABLE}, got estimator={estimator!r}"
                )
            if self.q not in ("cell", "z"):
                raise ValueError(f"`q` must be 'cell' or 'z' with z_code='soft', got {self.q!r}")
        own = _ESTIMATOR_OPTIONS[estimator]
        for name in ("bins", "shrinkage", "ridge", "bias_correct"):
            value = getattr(self, name)
            if value is None:
                set_(self, name, own.get(name))
            elif name not in own:
                owner = "binning" if name == "bins" else "gaussian_copula"
                hint = "; the bins of Z are `z_bins`" if name == "bins" else ""
                raise ValueError(
                    f"`{name}` sets the {'feature bins' if name == 'bins' else 'option'} of "
                    f"estimator={owner!r}, got {name}={value!r} with estimator={estimator!r}"
                    f"{hint}"
                )
        if self.bins is not None and not _is_count(self.bins):
            raise ValueError(f"`bins` must be a positive integer, got {self.bins!r}")
        if self.z_bins is None:
            set_(self, "z_bins", self.bins if estimator == "binning" else 30)
        elif not _is_count(self.z_bins):
            raise ValueError(f"`z_bins` must be a positive integer, got {self.z_bins!r}")
        set_(self, "z_bins", int(self.z_bins))
        if self.bins is not None:
            set_(self, "bins", int(self.bins))
        if estimator == "gaussian_copula":
            if not (_is_real(self.shrinkage) and 0.0 <= self.shrinkage <= 1.0):
                raise ValueError(f"`shrinkage` must lie in [0, 1], got {self.shrinkage!r}")
            if not (_is_real(self.ridge) and self.ridge >= 0):
                raise ValueError(
                    f"`ridge` must be a non-negative finite number, got {self.ridge!r}"
                )
            if not isinstance(self.bias_correct, bool):
                raise TypeError(
                    f"`bias_correct` must be a bool, got {type(self.bias_correct).__name__}"
                )
        set_(self, "beta", float(self.beta))
        set_(self, "temperature", float(self.temperature))

    @property
    def differentiable(self) -> bool:
        """Whether this is the stochastic encoder a loss can train (``z_code="soft"``)."""
        return self.z_code == "soft"

    def estimator_options(self) -> dict[str, Any]:
        """The estimator's own hyper-parameters (those it takes, resolved)."""
        return {name: getattr(self, name) for name in _ESTIMATOR_OPTIONS[self.estimator]}

    def replace(self, **changes: Any) -> GIBSpec:
        """A new spec with ``changes``; options that were left to their defaults are re-derived
        (a binning spec replaced by ``estimator="gaussian_copula"`` gets that estimator's
        defaults, not binning's ``bins``)."""
        unknown = sorted(set(changes) - {f.name for f in fields(self)} - {"_given"})
        if unknown or "_given" in changes:
            raise TypeError(f"GIBSpec has no option(s) {unknown or ['_given']}")
        return GIBSpec(**{**dict(self._given), **changes})

    def as_dict(self) -> dict[str, Any]:
        """The resolved options as plain values (for records and run headers)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "_given"}


_FIELDS = tuple(f.name for f in fields(GIBSpec) if f.name != "_given")


def as_spec(
    spec: GIBSpec | None,
    options: dict[str, Any],
    *,
    caller: str,
    defaults: dict[str, Any] | None = None,
    stacklevel: int = 4,
) -> GIBSpec:
    """``spec``, or the spec that ``caller``'s keyword ``options`` describe (the convenience).

    ``defaults`` are the caller's own defaults for keywords not given. A spec and keyword options
    together are an error (which would win is not obvious), as is a keyword that is not an option.
    ``bins`` with an estimator other than binning is 0.1's spelling of ``z_bins``: deprecated,
    mapped with a warning.
    """
    if spec is not None:
        if not isinstance(spec, GIBSpec):
            raise TypeError(f"`spec` must be a GIBSpec, got {type(spec).__name__}")
        if options:
            raise TypeError(
                f"{caller}() got `spec` and the keyword option(s) {sorted(options)}; pass them "
                "in the spec (spec.replace(...)) or as keywords, not both"
            )
        return spec
    unknown = sorted(set(options) - set(_FIELDS))
    if unknown:
        raise TypeError(f"{caller}() got unexpected keyword argument(s) {unknown}")
    options = {**(defaults or {}), **options}
    estimator = options.get("estimator", "gaussian_copula")
    bins = options.get("bins")
    if bins is not None and not _is_count(bins):
        raise ValueError(f"`bins` must be a positive integer, got {bins!r}")
    if bins is not None and estimator not in ("binning", "soft_binning"):
        from ._deprecation import warn_renamed

        warn_renamed(
            f"bins={bins!r} with estimator={estimator!r} (it set the bins of Z)",
            f"z_bins={bins!r}",
            stacklevel=stacklevel,
        )
        options["z_bins"] = bins if options.get("z_bins") is None else options["z_bins"]
        options["bins"] = None
    return GIBSpec(**options)

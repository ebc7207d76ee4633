"""The information measures besides GIB, written once over the estimator interface.

``entropy`` and ``mutual_information`` are the primitives, ``synergy`` is the paper's Eq. 2 and
``ib`` its Eq. 1; :mod:`gibloss.measures` holds ``gib`` (Eq. 5 and Eq. 17). Every function
validates its inputs here, at the boundary, and returns plain floats (bits) or a small result
object. What every term reads without the relationship is computed here too (:func:`null_terms`,
:func:`null_mi`: a shuffled null or a Miller-Madow term), to be subtracted (a bias correction) or
reported beside the plug-in value (``null=``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._deprecation import warn_renamed
from ._validation import as_array, as_weights, check_same_length
from .bias import check_bias_correction, miller_madow, permutations, shuffled_mean
from .bootstrap import bootstrap_counts, check_n_boot, percentile_interval
from .estimators import Estimator, get_estimator
from .estimators.base import FeatureTerms
from .results import IBResult

__all__ = [
    "entropy",
    "ib",
    "input_row_codes",
    "mutual_information",
    "null_mi",
    "null_terms",
    "resolve_null",
    "subtract_null",
    "synergy",
]

_VARIANTS = ("synergy", "sum_vs_whole")


def input_row_codes(x: np.ndarray) -> np.ndarray:
    """IB's X as the identity of the input rows: ``(n, 1)`` int64, one code per distinct row.

    What :func:`ib` does with float inputs and a discrete estimator (``x_code="rows"``); a
    caller that measures the same inputs many times (the monitor's probe) codes them once.
    """
    _, inv = np.unique(x, axis=0, return_inverse=True)
    return inv.reshape(-1, 1).astype(np.int64)


def null_terms(
    est: Estimator,
    x: np.ndarray,
    target: np.ndarray,
    weights: np.ndarray | None,
    how: str,
    n_shuffles: int,
    random_state: int | None,
) -> dict[str, Any]:
    """What every feature term reads without the relationship (``{}`` for ``how="none"``).

    ``"shuffle"``: the mean of ``est.feature_terms`` over ``n_shuffles`` permutations of the
    target's rows (with their weights); ``"miller_madow"`` (binned estimates): minus the
    Miller-Madow term of each. Returns ``whole`` (float), ``single`` and ``complement`` (arrays).
    """
    if how == "none":
        return {}
    if how == "shuffle":
        perms = permutations(x.shape[0], n_shuffles, random_state)
        nulls = [
            est.feature_terms(x, target[p], None if weights is None else weights[p])
            for p in perms
        ]
        return {
            "whole": float(np.mean([t.whole for t in nulls])),
            "single": np.mean([t.single for t in nulls], axis=0),
            "complement": np.mean([t.complement for t in nulls], axis=0),
        }
    parts = est.partitions(x)  # type: ignore[attr-defined]
    states = parts.states().numpy()
    single_codes = parts.single.numpy()
    t_codes, _ = est.codes(target)  # type: ignore[attr-defined]
    n_feat = x.shape[1]
    return {
        "whole": -miller_madow(states[-1], t_codes, weights),
        "single": np.array(
            [-miller_madow(single_codes[:, i], t_codes, weights) for i in range(n_feat)]
        ),
        "complement": np.zeros(1) if n_feat == 1 else np.array(
            [-miller_madow(states[i], t_codes, weights) for i in range(n_feat)]
        ),
    }


def subtract_null(terms: FeatureTerms, null: dict[str, Any]) -> FeatureTerms:
    """``terms`` minus a :func:`null_terms` reading (unchanged for an empty one)."""
    if not null:
        return terms
    return FeatureTerms(
        terms.whole - null["whole"],
        terms.single - null["single"],
        terms.complement - null["complement"],
        terms.diagnostics,
    )


def null_mi(
    est: Estimator,
    a: np.ndarray,
    b: np.ndarray,
    weights: np.ndarray | None,
    how: str,
    n_shuffles: int,
    random_state: int | None,
) -> float:
    """What ``est.mutual_information(a, b)`` reads without the relationship (0 for ``"none"``):
    the mean over permutations of ``b``'s rows, or minus the Miller-Madow term."""
    if how == "none":
        return 0.0
    if how == "shuffle":
        perms = permutations(a.shape[0], n_shuffles, random_state)
        return float(shuffled_mean(lambda p: est.mutual_information(a, b[p], weights), perms))
    return -miller_madow(est.codes(a)[0], est.codes(b)[0], weights)  # type: ignore[attr-defined]


def resolve_null(null: int, bias_correction: str, n_shuffles: int) -> tuple[str, int]:
    """Validate ``null`` and say which null a call computes: ``(how, shuffles)``.

    ``null = k > 0`` is a shuffled null of ``k`` permutations reported beside the plug-in
    values; otherwise the null is the ``bias_correction``'s own (``"none"``: no null) with
    ``n_shuffles`` permutations. Both at once is an error.
    """
    if not isinstance(null, int) or isinstance(null, bool) or null < 0:
        raise ValueError(f"`null` must be a non-negative integer, got {null!r}")
    if null and bias_correction != "none":
        raise ValueError(
            f"`null` reports a shuffled null beside plug-in values; with "
            f"bias_correction={bias_correction!r} the values are corrected and "
            "diagnostics['null'] already holds what was subtracted: pass one or the other"
        )
    return ("shuffle", null) if null else (bias_correction, n_shuffles)


def entropy(
    a: Any,
    estimator: str | Estimator = "binning",
    *,
    weights: Any = None,
    **options: Any,
) -> float:
    """Entropy of ``a`` in bits.

    Parameters
    ----------
    a : array-like or torch.Tensor
        ``(n,)`` or ``(n, d)``; integer/bool arrays are symbols, floats are continuous.
    estimator : {"binning", "kde", "gaussian_copula", "ksg"} or Estimator
        The estimator (a name with ``**options``, or a configured object).
    weights : array-like, optional
        ``(n,)`` non-negative per-sample weights.
    **options
        Hyper-parameters of a named estimator, e.g. ``bins=10``.

    Returns
    -------
    float
        Bits; differential entropy for continuous KDE/GCMI estimates.

    Examples
    --------
    >>> import numpy as np
    >>> from gibloss import entropy
    >>> entropy(np.array([0, 1, 0, 1]))
    1.0
    """
    est = get_estimator(estimator, **options)
    arr = as_array(a, "a")
    w = as_weights(weights, arr.shape[0])
    return float(est.entropy(arr, w))


def mutual_information(
    a: Any,
    b: Any,
    estimator: str | Estimator = "binning",
    *,
    weights: Any = None,
    bias_correction: str = "none",
    n_shuffles: int = 10,
    random_state: int | None = 0,
    **options: Any,
) -> float:
    """Mutual information ``I(A; B)`` in bits.

    Parameters
    ----------
    a, b : array-like or torch.Tensor
        ``(n,)`` or ``(n, d)`` with the same ``n``. Integer/bool arrays are symbols.
    estimator : {"binning", "kde", "gaussian_copula", "ksg"} or Estimator
        The estimator.
    weights : array-like, optional
        ``(n,)`` non-negative per-sample weights (the empirical measure is reweighted).
    bias_correction : {"none", "miller_madow", "shuffle"}
        ``"none"``: the plug-in value. ``"miller_madow"`` (binning): the Miller–Madow correction.
        ``"shuffle"``: minus the mean value over ``n_shuffles`` permutations of ``b``'s rows
        (see :mod:`gibloss.bias`). A corrected value can be slightly negative.
    n_shuffles : int
        Permutations for ``"shuffle"``.
    random_state : int, optional
        Seed of the permutations.
    **options
        Hyper-parameters of a named estimator.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> from gibloss import mutual_information
    >>> x = np.array([0, 0, 1, 1])
    >>> mutual_information(x, x)
    1.0
    """
    est = get_estimator(estimator, **options)
    check_bias_correction(bias_correction, n_shuffles, est.discrete)
    aa, bb = as_array(a, "a"), as_array(b, "b")
    n = check_same_length(a=aa, b=bb)
    w = as_weights(weights, n)
    value = float(est.mutual_information(aa, bb, w))
    return value - null_mi(est, aa, bb, w, bias_correction, n_shuffles, random_state)


def synergy(
    x: Any,
    y: Any,
    estimator: str | Estimator = "binning",
    *,
    variant: str = "synergy",
    kind: str | None = None,
    weights: Any = None,
    bias_correction: str = "none",
    n_shuffles: int = 10,
    random_state: int | None = 0,
    **options: Any,
) -> float:
    """Synergy of the features ``x`` about ``y`` (bits).

    ``variant="synergy"`` is the paper's Eq. 2,
    ``Syn = I(X; Y) - (1/N) sum_i [I(X^{-i}; Y) + I(X^i; Y)]``: +1 bit for the XOR of two fair bits,
    -1 bit for ``y = x1 = x2``. ``variant="sum_vs_whole"`` is ``I(X; Y) - sum_i I(X^i; Y)``
    (appendix I). The same ``variant`` selects Eq. 5 or Eq. 17 in :func:`gib` and
    :class:`gibloss.GIBLoss`.

    Parameters
    ----------
    x : array-like or torch.Tensor
        ``(n, N)`` features.
    y : array-like or torch.Tensor
        ``(n,)`` or ``(n, d)`` target (symbols or continuous).
    estimator : {"binning", "kde", "gaussian_copula", "ksg"} or Estimator
        The estimator.
    variant : {"synergy", "sum_vs_whole"}
        Which synergy.
    kind : {"feature", "sum_vs_whole"}, optional
        Deprecated spelling of ``variant`` (``"feature"`` is ``"synergy"``).
    weights : array-like, optional
        Per-sample weights.
    bias_correction, n_shuffles, random_state
        Applied to every term (see :func:`mutual_information`).

    Examples
    --------
    >>> import numpy as np
    >>> from gibloss import synergy
    >>> x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    >>> synergy(x, x[:, 0] ^ x[:, 1])
    1.0
    """
    if kind is not None:
        if kind not in ("feature", "sum_vs_whole"):
            raise ValueError(f"`kind` must be 'feature' or 'sum_vs_whole', got {kind!r}")
        variant = "synergy" if kind == "feature" else kind
        warn_renamed(f"synergy(kind={kind!r})", f"synergy(variant={variant!r})")
    if variant not in _VARIANTS:
        raise ValueError(f"`variant` must be one of {_VARIANTS}, got {variant!r}")
    est = get_estimator(estimator, **options)
    check_bias_correction(bias_correction, n_shuffles, est.discrete)
    xa, ya = as_array(x, "x"), as_array(y, "y")
    n = check_same_length(x=xa, y=ya)
    w = as_weights(weights, n)
    terms = subtract_null(
        est.feature_terms(xa, ya, w),
        null_terms(est, xa, ya, w, bias_correction, n_shuffles, random_state),
    )
    if variant == "sum_vs_whole":
        return float(terms.whole - terms.single.sum())
    n_feat = xa.shape[1]
    return float(terms.whole - (terms.single.sum() + terms.complement.sum()) / n_feat)


def ib(
    x: Any,
    t: Any,
    y: Any,
    estimator: str | Estimator = "binning",
    *,
    weights: Any = None,
    x_code: str = "rows",
    bias_correction: str = "none",
    n_shuffles: int = 10,
    null: int = 0,
    random_state: int | None = 0,
    n_boot: int = 0,
    level: float = 0.95,
    **options: Any,
) -> IBResult:
    """Information Bottleneck terms of a representation ``t`` (paper Eq. 1).

    Parameters
    ----------
    x : array-like or torch.Tensor
        ``(n, N)`` inputs.
    t : array-like or torch.Tensor
        ``(n, d)`` activations of a layer.
    y : array-like or torch.Tensor
        ``(n,)`` labels or targets.
    estimator : {"binning", "kde", "gaussian_copula", "ksg"} or Estimator
        The estimator.
    weights : array-like, optional
        Per-sample weights.
    x_code : {"rows", "binned"}
        Binning only: how the input is discretised. ``"rows"`` (default, the Shwartz-Ziv & Tishby
        convention) makes each distinct input row one state, so for distinct inputs and a
        deterministic network ``I(X; T) = H(T)``. ``"binned"`` bins ``x`` like ``t``.
    bias_correction, n_shuffles, random_state
        Correction of both terms (see :func:`mutual_information`): ``I(X; T)`` against
        permutations of T's rows, ``I(T; Y)`` against permutations of Y's.
        ``diagnostics["null"]`` holds what was subtracted.
    null : int, default 0
        Shuffles of a null reported beside the plug-in values, which it leaves unchanged
        (``diagnostics["null"]``: what each term reads with T's rows permuted against X, and Y's
        against T). Not together with a ``bias_correction``.
    n_boot, level
        Bootstrap resamples (0: none) and the interval's coverage: ``diagnostics["bootstrap"]``
        holds ``[low, high]`` of both terms (a null is held fixed; see :mod:`gibloss.bootstrap`).

    Returns
    -------
    IBResult

    Examples
    --------
    >>> import numpy as np
    >>> from gibloss import ib
    >>> x = np.arange(8)[:, None]
    >>> t = (x >= 4).astype(int)
    >>> y = t[:, 0]
    >>> r = ib(x, t, y)
    >>> r.complexity, r.prediction
    (1.0, 1.0)
    """
    est = get_estimator(estimator, **options)
    check_bias_correction(bias_correction, n_shuffles, est.discrete)
    how, shuffles = resolve_null(null, bias_correction, n_shuffles)
    check_n_boot(n_boot, level)
    xa, ta, ya = as_array(x, "x"), as_array(t, "t"), as_array(y, "y")
    n = check_same_length(x=xa, t=ta, y=ya)
    w = as_weights(weights, n)
    if x_code not in ("rows", "binned"):
        raise ValueError(f"`x_code` must be 'rows' or 'binned', got {x_code!r}")
    diagnostics: dict[str, Any] = {}
    if est.discrete:
        if x_code == "rows" and xa.dtype.kind not in "iu":
            xa = input_row_codes(xa)
        # bin T once; both terms and the diagnostic use the same codes
        t_codes, k_t = est.codes(ta)
        ta = t_codes[:, None]
        diagnostics["unique_row_fraction"] = k_t / n
    null_c = null_mi(est, ta, xa, w, how, shuffles, random_state)  # permutes X against T
    null_p = null_mi(est, ta, ya, w, how, shuffles, random_state)  # permutes Y against T
    if how != "none":
        diagnostics["null"] = {"complexity": null_c, "prediction": null_p}
    if null:  # reported beside the plug-in values, not subtracted from them
        null_c = null_p = 0.0
    complexity = float(est.mutual_information(ta, xa, w)) - null_c
    prediction = float(est.mutual_information(ta, ya, w)) - null_p
    if n_boot:
        base = w if w is not None else np.full(n, 1.0 / n)
        boot = np.empty((n_boot, 2))
        for b, c in enumerate(bootstrap_counts(n, n_boot, random_state)):
            wb = base * c
            wb = wb / wb.sum()
            boot[b] = (
                est.mutual_information(ta, xa, wb) - null_c,
                est.mutual_information(ta, ya, wb) - null_p,
            )
        diagnostics["bootstrap"] = {
            "n_boot": n_boot,
            "level": level,
            "complexity": percentile_interval(boot[:, 0], level),
            "prediction": percentile_interval(boot[:, 1], level),
        }
    return IBResult(complexity=complexity, prediction=prediction, diagnostics=diagnostics)

"""The information measures of the paper, written once over the estimator interface.

``entropy`` and ``mutual_information`` are the primitives; ``synergy`` is Eq. 2, ``gib`` Eq. 5 (and
the sum-versus-whole Eq. 17), ``ib`` Eq. 1. Every function validates its inputs here, at the
boundary, and returns plain floats (bits) or small result objects.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from ._deprecation import keyword_only_since, warn_renamed
from ._validation import as_array, as_weights, check_same_length, check_task
from .bias import check_bias_correction, miller_madow, permutations, shuffled_mean
from .bootstrap import bootstrap_counts, check_n_boot, percentile_interval
from .estimators import Estimator, get_estimator
from .estimators._discrete import plugin_entropy, plugin_mi
from .estimators.base import FeatureTerms
from .pmi import (
    PMI_MODES,
    Q_KINDS,
    Z_CODES,
    binary_logits,
    build_q,
    output_confidence,
    pmi_mass,
)
from .records import jsonable
from .split import synergy_split

__all__ = ["GIBResult", "IBResult", "entropy", "gib", "ib", "mutual_information", "synergy"]

_VARIANTS = ("synergy", "sum_vs_whole")
_SAMPLING = ("weighted", "resample")


def input_row_codes(x: np.ndarray) -> np.ndarray:
    """IB's X as the identity of the input rows: ``(n, 1)`` int64, one code per distinct row.

    What :func:`ib` does with float inputs and a discrete estimator (``x_code="rows"``); a
    caller that measures the same inputs many times (the monitor's probe) codes them once.
    """
    _, inv = np.unique(x, axis=0, return_inverse=True)
    return inv.reshape(-1, 1).astype(np.int64)


def _corrected_terms(
    est: Estimator,
    x: np.ndarray,
    target: np.ndarray,
    weights: np.ndarray | None,
    bias_correction: str,
    n_shuffles: int,
    random_state: int | None,
) -> tuple[FeatureTerms, dict[str, Any]]:
    """``est.feature_terms`` with a bias correction, and what was subtracted (the null)."""
    terms = est.feature_terms(x, target, weights)
    if bias_correction == "none":
        return terms, {}
    if bias_correction == "shuffle":
        perms = permutations(x.shape[0], n_shuffles, random_state)

        def permuted(p: np.ndarray) -> FeatureTerms:
            return est.feature_terms(x, target[p], None if weights is None else weights[p])

        nulls = [permuted(p) for p in perms]
        null_whole = float(np.mean([t.whole for t in nulls]))
        null_single = np.mean([t.single for t in nulls], axis=0)
        null_comp = np.mean([t.complement for t in nulls], axis=0)
    else:  # Miller-Madow, binned estimates: minus the correction is the bias removed
        parts = est.partitions(x)  # type: ignore[attr-defined]
        states = parts.states().numpy()
        single_codes = parts.single.numpy()
        t_codes, _ = est.codes(target)  # type: ignore[attr-defined]
        null_whole = -miller_madow(states[-1], t_codes, weights)
        null_single = np.array(
            [-miller_madow(single_codes[:, i], t_codes, weights) for i in range(x.shape[1])]
        )
        null_comp = np.array(
            [-miller_madow(states[i], t_codes, weights) for i in range(x.shape[1])]
        )
        if x.shape[1] == 1:
            null_comp = np.zeros(1)
    corrected = FeatureTerms(
        terms.whole - null_whole,
        terms.single - null_single,
        terms.complement - null_comp,
        terms.diagnostics,
    )
    null = {
        "whole": null_whole,
        "single": np.asarray(null_single),
        "complement": np.asarray(null_comp),
        "uncorrected_whole": terms.whole,
        "uncorrected_single": terms.single,
        "uncorrected_complement": terms.complement,
    }
    return corrected, null


def _corrected_mi(
    est: Estimator,
    a: np.ndarray,
    b: np.ndarray,
    weights: np.ndarray | None,
    bias_correction: str,
    n_shuffles: int,
    random_state: int | None,
) -> tuple[float, float]:
    """``est.mutual_information`` with a bias correction; returns (corrected, null)."""
    value = float(est.mutual_information(a, b, weights))
    if bias_correction == "none":
        return value, 0.0
    if bias_correction == "shuffle":
        perms = permutations(a.shape[0], n_shuffles, random_state)
        null = float(shuffled_mean(lambda p: est.mutual_information(a, b[p], weights), perms))
    else:
        null = -miller_madow(est.codes(a)[0], est.codes(b)[0], weights)  # type: ignore[attr-defined]
    return value - null, null


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
    return _corrected_mi(est, aa, bb, w, bias_correction, n_shuffles, random_state)[0]


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
    terms, _ = _corrected_terms(
        est, xa, ya, as_weights(weights, n), bias_correction, n_shuffles, random_state
    )
    if variant == "sum_vs_whole":
        return float(terms.whole - terms.single.sum())
    n_feat = xa.shape[1]
    return float(terms.whole - (terms.single.sum() + terms.complement.sum()) / n_feat)


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


def default_z_code(est: Estimator) -> str:
    """What ``z_code="auto"`` resolves to for an estimator (see :func:`gib`)."""
    return est.default_z_code


def _check_predictions(za: np.ndarray, y: Any) -> None:
    """``z_code="auto"`` reads ``z`` as model outputs; a representation must say so.

    Logits have one column per class; float targets have one output column. Anything else (a
    hidden layer passed as ``z``) would be softmaxed as if it were logits, so it raises
    (``TypeError`` for float targets beside several columns, ``ValueError`` for more columns than
    classes).
    """
    if za.dtype.kind != "f" or za.shape[1] < 2:
        return
    ya = as_array(y, "y")
    d = za.shape[1]
    if ya.dtype.kind not in "biu":
        raise TypeError(
            f"`y` must hold integer class labels for `z` with {d} columns (logits), got dtype "
            f"{ya.dtype}: cast with .astype(int) / .long() if the values are whole numbers; a "
            "regression output has one column; for a hidden representation pass z_code='binned'"
        )
    k = max(int(ya.max()) + 1, 2)
    if d > k:  # fewer columns than classes is caught by the label check
        raise ValueError(
            f"`z` has {d} columns but the labels in `y` span only {k} classes, and logits have one "
            "column per class; for a hidden representation pass z_code='binned'; for logits over "
            "classes absent from `y`, pass z_code='probs', 'logits' or 'argmax' explicitly"
        )


def _resolve_bins(
    estimator: str | Estimator, bins: int | None, z_bins: int | None, options: dict[str, Any]
) -> tuple[Estimator, int]:
    """The estimator (with ``bins`` when binning is named) and the bins of Z and float targets."""
    named_binning = isinstance(estimator, str) and estimator == "binning"
    if bins is not None and not named_binning:
        # 0.1 used `bins` for coding Z whatever the estimator
        warn_renamed(
            f"bins={bins!r} with estimator={estimator!r} (it set the bins of Z)",
            f"z_bins={bins!r}",
            stacklevel=5,
        )
        z_bins = bins if z_bins is None else z_bins
    elif bins is not None:
        options["bins"] = bins
    est = get_estimator(estimator, stacklevel=6, **options)
    if z_bins is None:
        z_bins = int(getattr(est, "bins", 30)) if est.discrete else 30
    if not isinstance(z_bins, (int, np.integer)) or isinstance(z_bins, bool) or z_bins < 1:
        raise ValueError(f"`z_bins` must be a positive integer, got {z_bins!r}")
    return est, int(z_bins)


@keyword_only_since
def gib(
    x: Any,
    z: Any,
    y: Any,
    *,
    beta: float = 1.0,
    estimator: str | Estimator = "binning",
    pmi: str | None = None,
    sampling: str = "weighted",
    z_code: str = "auto",
    q: str = "cell",
    variant: str = "synergy",
    bins: int | None = None,
    z_bins: int | None = None,
    random_state: int | None = 0,
    temperature: float = 1.0,
    bias_correction: str = "none",
    n_shuffles: int = 10,
    n_boot: int = 0,
    level: float = 0.95,
    task: str = "auto",
    **options: Any,
) -> GIBResult:
    """Generalized Information Bottleneck terms (paper Eq. 5; Eq. 17 with ``variant``).

    Parameters
    ----------
    x : array-like or torch.Tensor
        ``(n, N)`` input features (reduce images with :mod:`gibloss.reduction` first).
    z : array-like or torch.Tensor
        ``(n, k)`` logits (classification), ``(n,)`` float outputs (regression), or ``(n,)``
        integer predictions.
    y : array-like or torch.Tensor or None
        ``(n,)`` integer labels in ``[0, k)`` (classification) or float targets (regression).
        ``None`` with ``q="z"`` and ``pmi="none"``: Q is the coded output alone, and the terms
        are the complexity of the function ``x -> z`` (a single float output column is then
        read as a regression output unless ``task="classification"``); the prediction term
        and objective are NaN.
    beta : float, default 1.0
        Trade-off parameter; the complexity is divided by it.
    estimator : {"binning", "kde", "gaussian_copula", "ksg"} or Estimator
        Estimator of the ``2N + 1`` terms ``I(X; Q)``, ``I(X^i; Q)``, ``I(X^{-i}; Q)``.
    pmi : {"ratio", "ppmi", "literal", "none"}, optional
        Sample weighting of Q; default ``"ratio"`` (``"none"`` when ``q="pmi"``).
    sampling : {"weighted", "resample"}
        ``"weighted"``: MI under the weighted empirical measure (deterministic). ``"resample"``:
        draw ``n`` rows with replacement with probabilities given by the weights (seeded by
        ``random_state``), then use uniform weights — the paper's wording taken literally.
    z_code : {"auto", "probs", "logits", "argmax", "binned", "soft"}
        How Z is discretised for Q and the prediction term. ``"auto"`` is ``"probs"`` for binning
        (the paper bins model outputs) and ``"argmax"`` for GCMI and KDE (their class-conditional
        models need few, populated cells); it reads ``z`` as model outputs and raises an
        error when ``z`` cannot be logits (more columns than classes, or several columns for a
        float target). ``"binned"``: ``z`` is any representation, e.g. a hidden layer, binned
        per column over its min-max (whole row as one state); integer ``y`` are labels, float
        ``y`` are binned. ``"soft"``: the stochastic encoder
        ``Q ~ softmax(z / temperature)`` (Gaussian-Parzen soft bins for a regression output);
        the terms are the exact plug-in (binning) or Gaussian-copula values of that encoder,
        computed by the same code as :class:`gibloss.GIBLoss`, so they equal
        ``GIBLoss(...).measure`` on the same rows. Binning (uniform strategy) and GCMI only;
        ``q="cell"`` or ``"z"``, and ``sampling="weighted"``.
    q : {"cell", "pmi", "z"}
        Q's value: the cell ``(z, y)``, the value of the pointwise log-ratio, or the coded
        output Z under the PMI weights.
    variant : {"synergy", "sum_vs_whole"}
        Eq. 5 (feature-wise synergy) or Eq. 17.
    bins : int, optional
        Bins per feature of ``estimator="binning"`` given by name (an estimator object carries
        its own). Other estimators take no ``bins``.
    z_bins : int, optional
        Bins for coding Z (``z_code`` ``"probs"``, ``"logits"``, ``"binned"``, the soft bins of a
        regression output) and float targets. Default: the binning estimator's ``bins``
        (features and outputs binned alike, as the paper does), 30 for the other estimators.
    random_state : int, optional
        Seed for ``sampling="resample"``.
    temperature : float, default 1.0
        Softness of Q for ``z_code="soft"`` (ignored otherwise).
    bias_correction : {"none", "miller_madow", "shuffle"}
        Correction of every term (see :mod:`gibloss.bias`): the prediction term against
        permutations of Y's codes, each feature term against permutations of Q's rows (with
        their weights). ``diagnostics["null"]`` holds what was subtracted and the uncorrected
        terms. Not for ``z_code="soft"``.
    n_shuffles : int
        Permutations for ``"shuffle"`` (seeded by ``random_state``).
    n_boot : int
        Bootstrap resamples (0: none). ``diagnostics["bootstrap"]`` then holds the
        ``level`` percentile interval of every term (``prediction``, ``complexity``, ``whole``:
        ``[low, high]``; ``single``, ``complement``: ``[lows, highs]``), and the standard error
        and mean of the prediction and complexity over the resamples; see
        :mod:`gibloss.bootstrap` for what varies and what is held fixed. A resampled mean far
        from the estimate, relative to the interval (a saturated binned term), says that the
        interval is not a confidence interval. Seeded by ``random_state``;
        ``sampling="weighted"`` only.
    level : float
        Coverage of the bootstrap interval.
    task : {"auto", "classification", "regression"}
        How a single float output column is read: ``"auto"`` is a binary classifier's logit
        when ``y`` holds only 0 and 1 (integer or float labels, as ``BCEWithLogitsLoss`` wants
        them; the same numbers either way), else a regression; the other two say it.
    **options
        Hyper-parameters of a named estimator.

    Returns
    -------
    GIBResult

    Examples
    --------
    >>> import numpy as np
    >>> from gibloss import gib
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(500, 4))
    >>> y = (x[:, 0] + x[:, 1] > 0).astype(int)
    >>> logits = np.stack([-(x[:, 0] + x[:, 1]), x[:, 0] + x[:, 1]], axis=1)
    >>> res = gib(x, logits, y, estimator="gaussian_copula")
    >>> res.single.shape, res.prediction > 0.9
    ((4,), True)
    """
    est, z_bins = _resolve_bins(estimator, bins, z_bins, options)
    if not (isinstance(beta, (int, float)) and np.isfinite(beta) and beta > 0):
        raise ValueError(f"`beta` must be a positive finite number, got {beta!r}")
    if pmi is not None and pmi not in PMI_MODES:
        raise ValueError(f"`pmi` must be one of {PMI_MODES}, got {pmi!r}")
    if q not in Q_KINDS:
        raise ValueError(f"`q` must be one of {Q_KINDS}, got {q!r}")
    check_task(task)
    if y is None:  # the complexity of a function's output: Q = Z, unweighted
        if q != "z" or pmi not in (None, "none"):
            raise ValueError(
                "`y` may be None only with q='z' and pmi='none' (Q is then the output alone), "
                f"got q={q!r}, pmi={pmi!r}"
            )
        z_rows = as_array(z, "z")
        y, pmi = np.zeros(z_rows.shape[0], dtype=np.int64), "none"
        if task == "auto" and z_rows.dtype.kind == "f" and z_rows.shape[1] == 1:
            task = "regression"
        result = gib(
            x,
            z_rows,
            y,
            beta=beta,
            estimator=est,
            pmi=pmi,
            sampling=sampling,
            z_code=default_z_code(est) if z_code == "auto" else z_code,  # no labels to check
            q=q,
            variant=variant,
            z_bins=z_bins,
            random_state=random_state,
            temperature=temperature,
            bias_correction=bias_correction,
            n_shuffles=n_shuffles,
            n_boot=n_boot,
            level=level,
            task=task,
        )
        result.prediction = result.objective = float("nan")
        result.settings["labels"] = None
        return result
    if variant not in _VARIANTS:
        raise ValueError(f"`variant` must be one of {_VARIANTS}, got {variant!r}")
    if sampling not in _SAMPLING:
        raise ValueError(f"`sampling` must be one of {_SAMPLING}, got {sampling!r}")
    if z_code not in (*Z_CODES, "auto", "soft"):
        raise ValueError(
            f"`z_code` must be one of {(*Z_CODES, 'soft')} or 'auto', got {z_code!r}"
        )
    auto = z_code == "auto"
    if auto:
        z_code = default_z_code(est)
    check_bias_correction(bias_correction, n_shuffles, est.discrete)
    check_n_boot(n_boot, level)
    if n_boot and sampling != "weighted":
        raise ValueError(f"`n_boot` needs sampling='weighted', got sampling={sampling!r}")
    if z_code == "soft":
        if bias_correction != "none" or n_boot:
            raise ValueError("`bias_correction` and `n_boot` are not available with z_code='soft'")
        return _soft_gib(
            x, z, y, est, beta, pmi, q, sampling, variant, z_bins, temperature, task
        )
    xa = as_array(x, "x")
    za = as_array(z, "z")
    if z_code != "binned":
        za, y = binary_logits(za, y, task)
    if auto:
        _check_predictions(za, y)
    check_same_length(x=xa, z=za)
    qv = build_q(za, y, pmi=pmi, z_code=z_code, q=q, bins=z_bins, task=task)
    kz, ky = int(qv.z_codes.max()) + 1, int(qv.y_codes.max()) + 1
    prediction = plugin_mi(qv.z_codes, kz, qv.y_codes, ky)
    null: dict[str, Any] = {}
    if bias_correction == "shuffle":
        perms = permutations(len(qv.y_codes), n_shuffles, random_state)
        null["prediction"] = float(
            shuffled_mean(lambda p: plugin_mi(qv.z_codes, kz, qv.y_codes[p], ky), perms)
        )
    elif bias_correction == "miller_madow":
        null["prediction"] = -miller_madow(qv.z_codes, qv.y_codes)
    if null:
        null["uncorrected_prediction"] = prediction
        prediction -= null["prediction"]
    xs, qs, w = xa, qv.codes, qv.weights
    if sampling == "resample":
        rng = np.random.default_rng(random_state)
        idx = rng.choice(xa.shape[0], size=xa.shape[0], replace=True, p=w)
        xs, qs, w = xa[idx], qv.codes[idx], None
    terms, term_null = _corrected_terms(
        est, xs, qs[:, None], w, bias_correction, n_shuffles, random_state
    )
    null |= term_null
    n_feat = xa.shape[1]

    def complexity_of(single: np.ndarray, complement: np.ndarray) -> float:
        if variant == "synergy":
            return float((single.sum() + complement.sum()) / (2.0 * beta * n_feat))
        return float(single.sum() / beta)

    complexity = complexity_of(terms.single, terms.complement)
    if "single" in null:  # the complexity of what was subtracted (uncorrected = this + null)
        null["complexity"] = complexity_of(null["single"], null["complement"])
    pmi_name = pmi if pmi is not None else ("none" if q == "pmi" else "ratio")
    settings = {
        "estimator": repr(est),
        "z_code": z_code,
        "pmi": pmi_name,
        "q": q,
        "beta": float(beta),
        "variant": variant,
        "sampling": sampling,
        "z_bins": z_bins,
        "bias_correction": bias_correction,
    }
    diagnostics = {
        "h_q": plugin_entropy(qs, w),
        **(output_confidence(za, z_bins) if z_code != "binned" else {}),
        **qv.diagnostics,
        **terms.diagnostics,
    }
    if null:
        diagnostics["null"] = null
    if n_boot:
        diagnostics["bootstrap"] = _bootstrap_gib(
            est, xa, qv, pmi_name, null, complexity_of, n_boot, level, random_state
        )
    return GIBResult(
        prediction=float(prediction),
        complexity=complexity,
        objective=float(prediction - complexity),
        single=terms.single,
        complement=terms.complement,
        whole=float(terms.whole),
        settings=settings,
        diagnostics=diagnostics,
    )


def _bootstrap_gib(
    est: Estimator,
    xa: np.ndarray,
    qv: Any,
    pmi: str,
    null: dict[str, Any],
    complexity_of: Any,
    n_boot: int,
    level: float,
    random_state: int | None,
) -> dict[str, Any]:
    """Bootstrap intervals of every GIB term (see :mod:`gibloss.bootstrap`)."""
    n = xa.shape[0]
    counts = bootstrap_counts(n, n_boot, random_state)
    kz, ky = int(qv.z_codes.max()) + 1, int(qv.y_codes.max()) + 1
    zc, yc = torch.as_tensor(qv.z_codes), torch.as_tensor(qv.y_codes)
    weights = np.empty((n_boot, n))
    prediction = np.empty(n_boot)
    with torch.no_grad():
        for b, c in enumerate(counts):  # Q's weights from each resample's own (Z, Y) table
            ct = torch.as_tensor(c, dtype=torch.float64)
            weights[b] = pmi_mass(ct, None, zc, yc, ky, kz, pmi)[0].numpy()
            prediction[b] = plugin_mi(qv.z_codes, kz, qv.y_codes, ky, c / n)
    whole, single, complement = est.feature_terms_batch(xa, qv.codes[:, None], weights)
    prediction -= null.get("prediction", 0.0)  # a correction's null is held fixed
    whole = whole - null.get("whole", 0.0)
    single = single - null.get("single", 0.0)
    complement = complement - null.get("complement", 0.0)
    complexity = np.array([complexity_of(s, c) for s, c in zip(single, complement, strict=True)])
    return {
        "n_boot": n_boot,
        "level": level,
        "prediction": percentile_interval(prediction, level),
        "complexity": percentile_interval(complexity, level),
        "whole": percentile_interval(whole, level),
        "single": percentile_interval(single, level),
        "complement": percentile_interval(complement, level),
        "se": {
            "prediction": float(prediction.std(ddof=1)),
            "complexity": float(complexity.std(ddof=1)),
        },
        "mean": {"prediction": float(prediction.mean()), "complexity": float(complexity.mean())},
    }


def _soft_gib(
    x: Any,
    z: Any,
    y: Any,
    est: Estimator,
    beta: float,
    pmi: str | None,
    q: str,
    sampling: str,
    variant: str,
    bins: int,
    temperature: float,
    task: str = "auto",
) -> GIBResult:
    """``gib(..., z_code="soft")``: the differentiable core evaluated without gradient."""
    import torch

    from .functional import gib_terms

    relaxed = est.relaxation()
    if relaxed is None:
        raise ValueError(
            "`z_code`='soft' needs estimator 'binning' (uniform strategy) or "
            f"'gaussian_copula', got {est!r}"
        )
    surrogate, opts = relaxed
    if q not in ("cell", "z"):
        raise ValueError(f"`q` must be 'cell' or 'z' with z_code='soft', got {q!r}")
    if sampling != "weighted":
        raise ValueError(f"`sampling` must be 'weighted' with z_code='soft', got {sampling!r}")
    xa = as_array(x, "x")
    za = as_array(z, "z")
    check_same_length(x=xa, z=za)
    if za.dtype.kind not in "f":
        raise TypeError(f"`z` must hold float outputs for z_code='soft', got dtype {za.dtype}")
    ya = np.asarray(y.detach().cpu() if isinstance(y, torch.Tensor) else y)
    pmi = "ratio" if pmi is None else pmi
    with torch.no_grad():
        terms = gib_terms(
            xa,
            torch.as_tensor(za[:, 0] if za.shape[1] == 1 else za),
            torch.as_tensor(ya),
            estimator=surrogate,
            beta=beta,
            pmi=pmi,
            temperature=temperature,
            z_bins=bins,
            variant=variant,
            q=q,
            gather=False,
            task=task,
            **opts,
        )
    complexity = float(terms.complexity)
    prediction = float(terms.prediction)
    settings = {
        "estimator": repr(est),
        "z_code": "soft",
        "temperature": float(temperature),
        "pmi": pmi,
        "q": q,
        "beta": float(beta),
        "variant": variant,
        "sampling": sampling,
        "z_bins": bins,
    }
    return GIBResult(
        prediction=prediction,
        complexity=complexity,
        objective=prediction - complexity,
        single=terms.single.cpu().numpy(),
        complement=terms.complement.cpu().numpy(),
        whole=float(terms.whole),
        settings=settings,
        diagnostics={"h_q": float(terms.h_q)},
    )


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
    opts = (bias_correction, n_shuffles, random_state)
    complexity, null_c = _corrected_mi(est, ta, xa, w, *opts)  # permutes X against T
    prediction, null_p = _corrected_mi(est, ta, ya, w, *opts)  # permutes Y against T
    if bias_correction != "none":
        diagnostics["null"] = {"complexity": null_c, "prediction": null_p}
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

"""The Generalized Information Bottleneck of the paper, exactly: :func:`gib` (Eq. 5, and the
sum-versus-whole Eq. 17).

Q is built by the one Q builder (:func:`gibloss.q.code_q`): with hard codes of Z
(:func:`gibloss.build_q`) its ``2N + 1`` terms come from the estimator interface with the
corrections of :mod:`gibloss.information`; with soft memberships (``z_code="soft"``) from the
differentiable core (:func:`gibloss.functional.gib_terms`) without gradient, so that
``gib(..., spec=spec)`` and ``GIBLoss(spec=spec).measure`` are one computation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ._deprecation import keyword_only_since, warn_renamed
from ._validation import as_array, check_same_length, check_task
from .bias import check_bias_correction, miller_madow, permutations, shuffled_mean
from .bootstrap import bootstrap_counts, check_n_boot, percentile_interval
from .estimators import Estimator, get_estimator
from .estimators._discrete import plugin_entropy, plugin_mi
from .information import null_terms, resolve_null, subtract_null
from .pmi import PMI_MODES, Q_KINDS, Z_CODES, build_q, pmi_mass
from .results import GIBResult
from .spec import GIBSpec, as_spec

__all__ = ["default_z_code", "gib"]

_VARIANTS = ("synergy", "sum_vs_whole")
_SAMPLING = ("weighted", "resample")



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
    null: int = 0,
    n_boot: int = 0,
    level: float = 0.95,
    task: str = "auto",
    spec: GIBSpec | None = None,
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
    null : int, default 0
        Permutations of a shuffled null reported beside the plug-in values, which it leaves
        unchanged: ``diagnostics["null"]`` holds what every term (``prediction``,
        ``complexity``, ``whole``, ``single``, ``complement``) reads with Y's codes permuted
        against Z and Q's rows against the features, i.e. on data without the relationship.
        Not together with a ``bias_correction``, nor with ``z_code="soft"``.
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
    spec : GIBSpec, optional
        What is computed, as one object (:class:`gibloss.spec.GIBSpec`): it replaces
        ``estimator``, ``beta``, ``pmi``, ``z_code``, ``q``, ``variant``, ``bins``, ``z_bins``,
        ``temperature``, ``task`` and the estimator options, which must then be left out (the
        reporting keywords ``sampling``, ``bias_correction``, ``n_shuffles``, ``null``, ``n_boot``,
        ``level`` and ``random_state`` stay). The spec of a :class:`gibloss.GIBLoss`
        (``loss.spec``) measures exactly what the loss trains: ``gib(x, z, y, spec=loss.spec)``
        equals ``loss.measure(x, z, y)``.
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
    if spec is not None:
        keywords = (
            ("estimator", estimator, "binning"),
            ("beta", beta, 1.0),
            ("pmi", pmi, None),
            ("z_code", z_code, "auto"),
            ("q", q, "cell"),
            ("variant", variant, "synergy"),
            ("bins", bins, None),
            ("z_bins", z_bins, None),
            ("temperature", temperature, 1.0),
            ("task", task, "auto"),
        )
        given = {k: v for k, v, default in keywords if v is not default and v != default}
        spec = as_spec(spec, given | options, caller="gib")  # both at once raise
        estimator = get_estimator(spec.estimator, **spec.estimator_options())
        beta, pmi, z_code, q, variant = spec.beta, spec.pmi, spec.z_code, spec.q, spec.variant
        z_bins, temperature, task = spec.z_bins, spec.temperature, spec.task
    est, z_bins = _resolve_bins(estimator, bins, z_bins, options)
    if not (isinstance(beta, (int, float)) and np.isfinite(beta) and beta > 0):
        raise ValueError(f"`beta` must be a positive finite number, got {beta!r}")
    if pmi is not None and pmi not in PMI_MODES:
        raise ValueError(f"`pmi` must be one of {PMI_MODES}, got {pmi!r}")
    if q not in Q_KINDS:
        raise ValueError(f"`q` must be one of {Q_KINDS}, got {q!r}")
    check_task(task)
    labelled = y is not None
    if not labelled:  # the complexity of a function's output: Q = Z, unweighted
        if q != "z" or pmi not in (None, "none"):
            raise ValueError(
                "`y` may be None only with q='z' and pmi='none' (Q is then the output alone), "
                f"got q={q!r}, pmi={pmi!r}"
            )
        z_rows = as_array(z, "z")
        y, pmi = np.zeros(z_rows.shape[0], dtype=np.int64), "none"
        if task == "auto" and z_rows.dtype.kind == "f" and z_rows.shape[1] == 1:
            task = "regression"
        z = z_rows
        if z_code == "auto":  # no labels to check the outputs against
            z_code = default_z_code(est)
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
    how, shuffles = resolve_null(null, bias_correction, n_shuffles)  # what the null is
    check_n_boot(n_boot, level)
    if n_boot and sampling != "weighted":
        raise ValueError(f"`n_boot` needs sampling='weighted', got sampling={sampling!r}")
    if z_code == "soft":
        if bias_correction != "none" or n_boot or null:
            raise ValueError(
                "`bias_correction`, `null` and `n_boot` are not available with z_code='soft'"
            )
        if sampling != "weighted":
            raise ValueError(f"`sampling` must be 'weighted' with z_code='soft', got {sampling!r}")
        if spec is None:
            relaxed = est.relaxation()
            if relaxed is None:
                raise ValueError(
                    "`z_code`='soft' needs estimator 'binning' (uniform strategy) or "
                    f"'gaussian_copula', got {est!r}"
                )
            spec = GIBSpec(
                relaxed[0],
                beta=beta,
                pmi=pmi,
                q=q,
                variant=variant,
                temperature=temperature,
                z_bins=z_bins,
                task=task,
                **relaxed[1],
            )
        from .functional import gib_terms  # the differentiable core, without gradient

        xa, za = as_array(x, "x"), as_array(z, "z")
        check_same_length(x=xa, z=za)
        if za.dtype.kind != "f":
            raise TypeError(f"`z` must hold float outputs for z_code='soft', got dtype {za.dtype}")
        ys = y if isinstance(y, torch.Tensor) else torch.as_tensor(as_array(y, "y"))
        with torch.no_grad():
            terms = gib_terms(xa, torch.as_tensor(za), ys, spec, gather=False, null=False)
        settings = {**spec.as_dict(), "sampling": "weighted"}
        return _labels_or_not(GIBResult.from_terms(terms, settings), labelled)
    xa = as_array(x, "x")
    za = as_array(z, "z")
    if auto:
        _check_predictions(za, y)
    check_same_length(x=xa, z=za)
    qv = build_q(za, y, pmi=pmi, z_code=z_code, q=q, bins=z_bins, task=task)
    kz, ky = int(qv.z_codes.max()) + 1, int(qv.y_codes.max()) + 1
    prediction = plugin_mi(qv.z_codes, kz, qv.y_codes, ky)
    subtract = bias_correction != "none"  # a correction; else the null is reported beside
    nulls: dict[str, Any] = {}
    if how == "shuffle":
        perms = permutations(len(qv.y_codes), shuffles, random_state)
        nulls["prediction"] = float(
            shuffled_mean(lambda p: plugin_mi(qv.z_codes, kz, qv.y_codes[p], ky), perms)
        )
    elif how == "miller_madow":
        nulls["prediction"] = -miller_madow(qv.z_codes, qv.y_codes)
    xs, qs, w = xa, qv.codes, qv.weights
    if sampling == "resample":
        rng = np.random.default_rng(random_state)
        idx = rng.choice(xa.shape[0], size=xa.shape[0], replace=True, p=w)
        xs, qs, w = xa[idx], qv.codes[idx], None
    plugin = est.feature_terms(xs, qs[:, None], w)
    nulls |= null_terms(est, xs, qs[:, None], w, how, shuffles, random_state)
    terms = plugin
    if subtract:
        terms = subtract_null(plugin, nulls)
        nulls["uncorrected_prediction"] = prediction
        prediction -= nulls["prediction"]
        nulls["uncorrected_whole"] = plugin.whole
        nulls["uncorrected_single"] = plugin.single
        nulls["uncorrected_complement"] = plugin.complement
    n_feat = xa.shape[1]

    def complexity_of(single: np.ndarray, complement: np.ndarray) -> float:
        if variant == "synergy":
            return float((single.sum() + complement.sum()) / (2.0 * beta * n_feat))
        return float(single.sum() / beta)

    complexity = complexity_of(terms.single, terms.complement)
    if "single" in nulls:  # the complexity of the null (uncorrected = corrected + this)
        nulls["complexity"] = complexity_of(nulls["single"], nulls["complement"])
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
        **({"null": null} if null else {}),
    }
    diagnostics = {
        "h_q": plugin_entropy(qs, w),
        **qv.diagnostics,
        **terms.diagnostics,
    }
    if nulls:
        diagnostics["null"] = nulls
    if n_boot:  # a correction's null is held fixed; a reported one is not subtracted
        diagnostics["bootstrap"] = _bootstrap_gib(
            est, xa, qv, pmi_name, nulls if subtract else {}, complexity_of, n_boot, level,
            random_state,
        )
    result = GIBResult(
        prediction=float(prediction),
        complexity=complexity,
        objective=float(prediction - complexity),
        single=terms.single,
        complement=terms.complement,
        whole=float(terms.whole),
        settings=settings,
        diagnostics=diagnostics,
    )
    return _labels_or_not(result, labelled)


def _labels_or_not(result: GIBResult, labelled: bool) -> GIBResult:
    """Without labels there is no prediction term: NaN, and the settings say so."""
    if not labelled:
        result.prediction = result.objective = float("nan")
        result.settings["labels"] = None
    return result


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

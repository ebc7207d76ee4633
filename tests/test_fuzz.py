"""Property-based fuzzing of the public API (estimators, measures, GIBLoss, the monitor).

Good input — constant and tied columns, a single class, fewer rows than features, huge and tiny
magnitudes, half precision, autocast, low temperatures, every ``pmi`` mode — gives finite values
and finite gradients within the known bounds. Bad input gives a ``ValueError``/``TypeError`` that
names the argument.

``make test`` runs every property with the default profile (a few hundred cases each); ``make
fuzz`` runs them with the ``fuzz`` profile (see ``tests/conftest.py``) and prints the number of
generated cases.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pytest
import torch
from conftest import bins_kw  # noqa: E402
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gibloss

ESTIMATORS = ["binning", "gaussian_copula", "kde"]
PMI = ["ratio", "ppmi", "literal", "none"]
TOL = 1e-7  # bits; slack for rounding in bounds

# the monitor cases cost ~20x a loss case: a fifth of the profile's examples
MONITOR_SETTINGS = settings(
    max_examples=max(10, settings.default.max_examples // 5),
    suppress_health_check=[HealthCheck.too_slow],
)


# --- generators ------------------------------------------------------------------------------


def _features(rng: np.random.Generator, n: int, n_feat: int, kind: str) -> np.ndarray:
    x = rng.normal(size=(n, n_feat))
    if kind == "constant":
        x[:] = 1.5
    elif kind == "tied":
        x = np.round(x)
    elif kind == "mixed":
        x[:, 0] = 3.0
        x[:, -1] = np.round(x[:, -1])
        if n_feat > 2:
            x[:, 1] = x[:, 2]  # a duplicated column
    elif kind == "huge":
        x = x * 1e300
    elif kind == "tiny":
        x = x * 1e-300
    elif kind == "magnitudes":  # columns at very different scales
        x = x * np.logspace(-150, 150, n_feat)[None, :]
    return x


X_KINDS = ["normal", "constant", "tied", "mixed", "huge", "tiny", "magnitudes"]


@st.composite
def continuous_and_symbols(draw) -> tuple[np.ndarray, np.ndarray, str]:
    n = draw(st.integers(2, 40))
    n_feat = draw(st.integers(1, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = _features(rng, n, n_feat, draw(st.sampled_from(X_KINDS)))
    n_cols = draw(st.integers(1, 2))
    labels = draw(st.sampled_from(["random", "single", "negative", "sparse"]))
    y = rng.integers(0, draw(st.integers(1, 4)), size=(n, n_cols))
    if labels == "single":
        y[:] = 0
    elif labels == "negative":
        y = 3 * y - 7
    elif labels == "sparse":
        y = y * 10**15 - 10**14
    return x, y, draw(st.sampled_from(ESTIMATORS))


def _entropy_bits(y: np.ndarray) -> float:
    _, inv, counts = np.unique(y, axis=0, return_inverse=True, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


# --- estimators ---------------------------------------------------------------------------------


@given(continuous_and_symbols())
def test_mi_with_symbols_is_finite_and_bounded(case_counter, case) -> None:
    case_counter.tick()
    x, y, estimator = case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mi = gibloss.mutual_information(x, y, estimator)
    assert math.isfinite(mi)
    assert -TOL <= mi <= _entropy_bits(y) + TOL


@given(continuous_and_symbols(), st.integers(-20, 20))
def test_mi_is_invariant_to_relabelling_and_power_of_two_scaling(case_counter, case, k) -> None:
    case_counter.tick()
    x, y, estimator = case
    if not np.all(np.isfinite(x * 2.0**k)) or np.any((x != 0) & (x * 2.0**k == 0)):
        return  # the scaled copy leaves float64
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ref = gibloss.mutual_information(x, y, estimator)
        relabelled = gibloss.mutual_information(x, -5 * y + 11, estimator)
        scaled = gibloss.mutual_information(x * 2.0**k, y, estimator)
    assert relabelled == pytest.approx(ref, abs=1e-9)
    assert scaled == pytest.approx(ref, abs=1e-9)


# --- measures -----------------------------------------------------------------------------------


@st.composite
def classification_case(draw) -> dict[str, Any]:
    n = draw(st.integers(2, 40))
    n_feat = draw(st.integers(1, 12))  # n < N allowed
    k = draw(st.integers(2, 5))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = _features(rng, n, n_feat, draw(st.sampled_from(X_KINDS)))
    labels = draw(st.sampled_from(["random", "single", "all_wrong", "all_right"]))
    y = np.zeros(n, dtype=np.int64) if labels == "single" else rng.integers(0, k, size=n)
    scale = draw(st.sampled_from([0.0, 1e-8, 1.0, 30.0, 1e4]))
    logits = rng.normal(size=(n, k)) * scale
    if labels in ("all_wrong", "all_right"):
        target = (y + 1) % k if labels == "all_wrong" else y
        logits = np.zeros((n, k))
        logits[np.arange(n), target] = 20.0
    return {"x": x, "logits": logits, "y": y, "k": k}


@given(
    classification_case(),
    st.sampled_from(ESTIMATORS),
    st.sampled_from(PMI),
    st.sampled_from(["probs", "logits", "argmax"]),
    st.sampled_from(["synergy", "sum_vs_whole"]),
)
def test_gib_is_finite_and_bounded(case_counter, case, estimator, pmi, z_code, variant) -> None:
    case_counter.tick()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = gibloss.gib(
            case["x"],
            case["logits"],
            case["y"],
            estimator=estimator,
            pmi=pmi,
            z_code=z_code,
            variant=variant,
            **bins_kw(estimator, 8),
        )
    h_q = res.diagnostics["h_q"]
    assert math.isfinite(res.complexity) and math.isfinite(res.prediction)
    assert -TOL <= res.prediction <= _entropy_bits(case["y"]) + TOL
    for terms in (res.single, res.complement, np.array([res.whole])):
        assert np.all(np.isfinite(terms))
        assert np.all(terms >= -TOL) and np.all(terms <= h_q + TOL)


@given(classification_case(), st.sampled_from(ESTIMATORS))
def test_synergy_and_ib_are_finite_and_bounded(case_counter, case, estimator) -> None:
    case_counter.tick()
    x, y = case["x"], case["y"]
    h_y = _entropy_bits(y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        syn = gibloss.synergy(x, y, estimator=estimator)
        res = gibloss.ib(x, case["logits"], y, estimator=estimator)
    assert math.isfinite(syn)
    assert -h_y - TOL <= syn <= h_y + TOL
    assert math.isfinite(res.complexity) and math.isfinite(res.prediction)
    assert -TOL <= res.prediction <= h_y + TOL


# --- GIBLoss forward and backward ------------------------------------------------------------


@given(
    classification_case(),
    st.sampled_from(["gaussian_copula", "binning"]),
    st.sampled_from(PMI),
    st.sampled_from([1e-3, 0.01, 0.1, 1.0, 10.0]),
    st.sampled_from(["float32", "float64", "float16", "autocast_bf16", "autocast_fp16"]),
    st.sampled_from(["synergy", "sum_vs_whole"]),
    st.sampled_from([0.0, 1.0]),
)
def test_gibloss_classification_values_and_gradients_are_finite(
    case_counter, case, estimator, pmi, temperature, precision, variant, weight
) -> None:
    case_counter.tick()
    dtype = torch.float64 if precision == "float64" else torch.float32
    logits = torch.tensor(case["logits"], dtype=dtype, requires_grad=True)
    y = torch.tensor(case["y"])
    loss_fn = gibloss.GIBLoss(
        estimator=estimator,
        pmi=pmi,
        temperature=temperature,
        **bins_kw(estimator, 6),
        variant=variant,
        weight=weight,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if precision == "float16":
            value = loss_fn(case["x"], logits.half() * 1.0, y)
        elif precision.startswith("autocast"):
            half = torch.bfloat16 if precision.endswith("bf16") else torch.float16
            with torch.autocast("cpu", dtype=half):
                value = loss_fn(case["x"], logits.to(half) * 1.0, y)
        else:
            value = loss_fn(case["x"], logits, y)
    value.sum().backward()
    assert bool(torch.isfinite(value).all())
    assert logits.grad is not None
    if precision in ("float32", "float64") or bool(torch.isfinite(logits.grad).all()):
        assert bool(torch.isfinite(logits.grad).all())
    else:
        # A half-precision gradient may overflow only where the exact gradient itself exceeds
        # the half dtype's range (float16: 65504): check that, in float64, on the same
        # (rounded) outputs.
        half = torch.bfloat16 if precision.endswith("bf16") else torch.float16
        exact = torch.tensor(case["logits"]).to(half).double().requires_grad_(True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            loss_fn(case["x"], exact, y).sum().backward()
        assert bool(torch.isfinite(exact.grad).all())
        assert float(exact.grad.abs().max()) > 0.5 * torch.finfo(half).max
    terms = loss_fn.last_terms
    h_q = float(terms.h_q)
    for t in (terms.single, terms.complement, terms.whole.reshape(1)):
        assert bool(torch.isfinite(t).all())
        assert float(t.min()) >= -TOL and float(t.max()) <= h_q + 1e-6
    assert float(terms.complexity.min()) >= -TOL


@given(
    st.integers(2, 40),
    st.integers(1, 8),
    st.integers(0, 2**32 - 1),
    st.sampled_from(X_KINDS),
    st.sampled_from(["float64", "float32", "float16", "bfloat16", "int64", "constant"]),
    st.sampled_from([1e-200, 1e-3, 1.0, 1e5, 1e150]),
    st.sampled_from(["gaussian_copula", "binning"]),
    st.sampled_from(PMI),
    st.sampled_from([0.01, 1.0]),
    st.booleans(),
)
def test_gibloss_regression_values_and_gradients_are_finite(
    case_counter, n, n_feat, seed, x_kind, y_kind, out_scale, estimator, pmi, temperature, column
) -> None:
    case_counter.tick()
    rng = np.random.default_rng(seed)
    x = _features(rng, n, n_feat, x_kind)
    if y_kind == "int64":  # a binary classifier with one logit
        y = torch.tensor(rng.integers(0, 2, size=n))
    elif y_kind == "constant":
        y = torch.full((n,), 2.5)
    else:
        y = torch.tensor(rng.normal(size=n) * 100).to(getattr(torch, y_kind))
    out = torch.tensor(rng.normal(size=(n, 1) if column else n) * out_scale, requires_grad=True)
    loss_fn = gibloss.GIBLoss(
        estimator=estimator, pmi=pmi, temperature=temperature, **bins_kw(estimator, 7)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        value = loss_fn(x, out, y)
    value.backward()
    assert bool(torch.isfinite(value))
    assert bool(torch.isfinite(out.grad).all())
    terms = loss_fn.last_terms
    assert float(terms.single.min()) >= -TOL
    assert float(terms.single.max()) <= float(terms.h_q) + 1e-6


# --- binary float labels, calls without gradient, the last batch --------------------------------


@given(
    st.integers(2, 40),
    st.integers(1, 6),
    st.integers(0, 2**32 - 1),
    st.sampled_from(X_KINDS),
    st.sampled_from(["gaussian_copula", "binning"]),
    st.sampled_from(PMI),
    st.sampled_from([0.01, 1.0]),
    st.sampled_from(["float32", "float64"]),
)
def test_float_01_labels_beside_one_logit_equal_integer_labels(
    case_counter, n, n_feat, seed, x_kind, estimator, pmi, temperature, label_dtype
) -> None:
    case_counter.tick()
    rng = np.random.default_rng(seed)
    x = _features(rng, n, n_feat, x_kind)
    labels = rng.integers(0, 2, size=n)
    logit = torch.tensor(rng.normal(size=(n, 1)) * 3)
    opts = {"estimator": estimator, "pmi": pmi, "temperature": temperature}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        as_float = gibloss.GIBLoss(**opts)(
            x, logit, torch.tensor(labels).to(getattr(torch, label_dtype))
        )
        as_long = gibloss.GIBLoss(**opts)(x, logit, torch.tensor(labels))
        exact_f = gibloss.gib(x, logit.numpy(), labels.astype(label_dtype), estimator=estimator)
        exact_l = gibloss.gib(x, logit.numpy(), labels, estimator=estimator)
    assert float(as_float) == float(as_long)
    assert exact_f.complexity == exact_l.complexity
    assert exact_f.prediction == exact_l.prediction


def _memory_state(loss: gibloss.GIBLoss) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in loss.state_dict().items()}


@given(
    st.integers(2, 40),
    st.integers(1, 6),
    st.integers(0, 2**32 - 1),
    st.integers(2, 4),
    st.sampled_from(["no_grad", "inference_mode", "measure", "one_row"]),
    st.sampled_from(PMI),
)
def test_memory_is_untouched_by_calls_without_gradient_and_by_one_row(
    case_counter, n, n_feat, seed, k, context, pmi
) -> None:
    case_counter.tick()
    gen = torch.Generator().manual_seed(seed)
    model = torch.nn.Linear(n_feat, k).double()
    loss = gibloss.GIBLoss(pmi=pmi)
    x = torch.randn(n, n_feat, generator=gen, dtype=torch.float64)
    y = torch.randint(0, k, (n,), generator=gen)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        loss(x, model(x), y)
        before = _memory_state(loss)
        x2 = torch.randn(n, n_feat, generator=gen, dtype=torch.float64)
        if context == "no_grad":
            with torch.no_grad():
                value = loss(x2, model(x2), y)
        elif context == "inference_mode":
            with torch.inference_mode():
                value = loss(x2, model(x2), y)
        elif context == "measure":
            value = loss.measure(x2, model(x2), y).complexity
        else:
            out = model(x2[:1])
            value = loss(x2[:1], out, y[:1])
            value.backward()
            assert float(value.detach()) == 0.0
            assert all(float(p.grad.abs().max()) == 0.0 for p in model.parameters())
    assert bool(torch.isfinite(value))
    after = _memory_state(loss)
    assert sorted(after) == sorted(before)
    assert all(torch.equal(after[key], before[key]) for key in before)


# --- bad input -------------------------------------------------------------------------------

_NAN = float("nan")


def _bad_calls(n: int, k: int) -> list[tuple[str, Any]]:
    """(argument name, zero-argument call) pairs that must raise naming the argument."""
    x = torch.randn(n, 3)
    z = torch.randn(n, k)
    y = torch.randint(0, k, (n,))
    xn = np.random.default_rng(0).normal(size=(n, 2))
    nan_x = xn.copy()
    nan_x[0, 0] = _NAN
    y_nan = torch.randn(n)
    y_nan[-1] = _NAN
    z_nan = z.clone()
    z_nan[0, 0] = _NAN
    return [
        ("weight", lambda: gibloss.GIBLoss(weight=_NAN)),
        ("weight", lambda: gibloss.GIBLoss(weight=-1.0)),
        ("temperature", lambda: gibloss.GIBLoss(temperature=0)),
        ("temperature", lambda: gibloss.GIBLoss(temperature=-_NAN)),
        ("beta", lambda: gibloss.GIBLoss(beta=0.0)),
        ("bins", lambda: gibloss.GIBLoss(estimator="binning", bins=0)),
        ("bins", lambda: gibloss.GIBLoss(estimator="binning", bins=2.5)),
        ("z_bins", lambda: gibloss.GIBLoss(z_bins=0)),
        ("variant", lambda: gibloss.GIBLoss(variant="feature")),
        ("validate", lambda: gibloss.GIBLoss(validate="yes")),
        ("dtype", lambda: gibloss.GIBLoss(dtype=torch.int64)),
        ("ridge", lambda: gibloss.GIBLoss(ridge=float("nan"))),
        ("reducer", lambda: gibloss.GIBLoss(reducer=object())),
        ("pmi", lambda: gibloss.GIBLoss(pmi="bogus")),
        ("estimator", lambda: gibloss.GIBLoss(estimator="bogus")),
        ("reduction", lambda: gibloss.GIBLoss(reduction="sum")),
        ("shrinkage", lambda: gibloss.GIBLoss(shrinkage=2.0)),
        ("y", lambda: gibloss.GIBLoss()(x, z, y[None, :])),
        ("y", lambda: gibloss.GIBLoss()(x, z, y[:, None, None])),
        ("y", lambda: gibloss.GIBLoss()(x, z, y.float())),
        ("y", lambda: gibloss.GIBLoss()(x, z, y + k)),
        ("y", lambda: gibloss.GIBLoss()(x, z[:, 0], y_nan)),
        ("y", lambda: gibloss.GIBLoss()(x, z, y[:-1])),
        ("y", lambda: gibloss.GIBLoss()(x, z, y.numpy())),
        ("outputs", lambda: gibloss.GIBLoss()(x, z_nan, y)),
        ("outputs", lambda: gibloss.GIBLoss()(x, z.long(), y)),
        ("outputs", lambda: gibloss.GIBLoss()(x, z[None], y)),
        ("x", lambda: gibloss.GIBLoss()(nan_x, z, y)),
        ("x", lambda: gibloss.GIBLoss()(xn[:-1], z, y)),
        ("a", lambda: gibloss.mutual_information(nan_x, y.numpy())),
        ("x", lambda: gibloss.gib(np.zeros((n, 0)), z.numpy(), y.numpy())),
        ("b", lambda: gibloss.mutual_information(xn, np.zeros((n, 2, 2)))),
        ("beta", lambda: gibloss.gib(xn, z.numpy(), y.numpy(), beta=-1.0)),
        ("variant", lambda: gibloss.gib(xn, z.numpy(), y.numpy(), variant="eq9")),
        ("sampling", lambda: gibloss.gib(xn, z.numpy(), y.numpy(), sampling="bogus")),
        ("mode", lambda: gibloss.pmi_weights(z.numpy(), y.numpy(), mode="bogus")),
        ("bins", lambda: gibloss.GIBLoss(estimator="gaussian_copula", bins=0)),
        ("x", lambda: gibloss.GIBLoss()(torch.zeros(n, 0), z, y)),
        ("x", lambda: gibloss.GIBLoss(estimator="binning")(torch.zeros(n, 0), z, y)),
        ("pmi", lambda: gibloss.gib(xn, z[:-1].numpy(), y.numpy(), pmi="bogus")),
        ("q", lambda: gibloss.gib(xn, z[:-1].numpy(), y.numpy(), q="bogus")),
        ("task", lambda: gibloss.gib(xn, z[:-1].numpy(), y.numpy(), task="bogus")),
        ("task", lambda: gibloss.GIBLoss(task="binary")),
        ("reducer", lambda: gibloss.GIBLoss(reducer=gibloss.PCAReducer)),
        ("y", lambda: gibloss.GIBLoss(task="classification")(x, z[:, :1], y_nan.abs() + 2)),
    ]


@given(st.integers(3, 30), st.integers(2, 5), st.data())
def test_bad_input_is_rejected_naming_the_argument(case_counter, n, k, data) -> None:
    case_counter.tick()
    calls = _bad_calls(n, k)
    name, call = data.draw(st.sampled_from(calls))
    with pytest.raises((ValueError, TypeError)) as info:
        call()
    assert f"`{name}`" in str(info.value), (name, str(info.value))


# --- the monitor --------------------------------------------------------------------------------


@MONITOR_SETTINGS
@given(
    st.integers(4, 40),
    st.integers(0, 2**32 - 1),
    st.sampled_from(["classification", "regression"]),
    st.sampled_from([1e-6, 1.0, 1e3, 1e6]),
    st.sampled_from(["tanh", "relu"]),
)
def test_monitor_records_are_finite(case_counter, tmp_path_factory, n, seed, task, scale, act):
    case_counter.tick()
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 5, generator=gen)
    k = 1 if task == "regression" else 3
    if task == "regression":
        y = x[:, 0].double() * scale
    else:
        y = torch.randint(0, k, (n,), generator=gen)
    model = torch.nn.Sequential(
        torch.nn.Linear(5, 6),
        torch.nn.Tanh() if act == "tanh" else torch.nn.ReLU(),
        torch.nn.Linear(6, k),
    )
    with torch.no_grad():
        model[2].weight.mul_(scale)
    path = tmp_path_factory.mktemp("mon") / "m.jsonl"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mon = gibloss.InformationPlaneMonitor(model, (x, y), path=path)
        mon.measure(step=0)
        with torch.no_grad():
            model[2].weight.mul_(3.0)
        mon.measure(step=1)
        mon.close()
    for rec in mon.records:
        if rec["kind"] == "header":
            continue
        for value in _numbers(rec):
            assert math.isfinite(value), rec


def _numbers(obj: Any) -> list[float]:
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return []
    if isinstance(obj, (int, float)):
        return [float(obj)]
    if isinstance(obj, dict):
        return [v for item in obj.values() for v in _numbers(item)]
    if isinstance(obj, (list, tuple)):
        return [v for item in obj for v in _numbers(item)]
    return []

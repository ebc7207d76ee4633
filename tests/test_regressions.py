"""Regression tests: each failure found by property-based testing of the public API, as found.

Every test below failed on the code before its fix (NaN gradients, crashes, wrong values or
silently accepted bad input) and states the correct behaviour.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import gibloss
from gibloss.estimators import BinningEstimator

# --- 1. NaN gradients from tiny (not zero) soft cell masses ---------------------------------------


@pytest.mark.parametrize("n", [8, 20, 32])
def test_regression_gradients_are_finite_with_default_options(n: int) -> None:
    bad = []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        x = torch.tensor(rng.normal(size=(n, 1)))
        y = torch.tensor(rng.normal(size=n))
        out = torch.tensor(rng.normal(size=n), requires_grad=True)
        loss = gibloss.GIBLoss()(x, out, y)
        loss.backward()
        assert torch.isfinite(loss)
        if not bool(torch.isfinite(out.grad).all()):
            bad.append(seed)
    assert bad == [], f"non-finite gradients for seeds {bad}"


@pytest.mark.parametrize("weight", [0.0, 1.0])
@pytest.mark.parametrize("estimator", ["gaussian_copula", "binning"])
def test_low_temperature_classification_gradients_are_finite(weight: float, estimator: str) -> None:
    bad = []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        x = torch.tensor(rng.normal(size=(64, 10)))
        y = torch.tensor(rng.integers(0, 10, 64))
        z = torch.tensor(rng.normal(size=(64, 10)) * 3, requires_grad=True)
        loss = gibloss.GIBLoss(estimator=estimator, temperature=0.01, weight=weight)(x, z, y)
        loss.backward()
        if not bool(torch.isfinite(z.grad).all()):
            bad.append(seed)
    assert bad == [], f"non-finite gradients for seeds {bad}"


# --- 2. pmi="literal" at low temperature --------------------------------------------------------


@pytest.mark.parametrize("estimator", ["gaussian_copula", "binning"])
def test_literal_pmi_at_low_temperature_is_finite(estimator: str) -> None:
    rng = np.random.default_rng(8)
    x = torch.tensor(rng.normal(size=(4, 2)))
    y = torch.tensor(rng.integers(0, 2, 4))
    z = torch.tensor(rng.normal(size=(4, 4)), requires_grad=True)
    loss = gibloss.GIBLoss(estimator=estimator, pmi="literal", temperature=0.001)(x, z, y)
    loss.backward()
    assert torch.isfinite(loss) and bool(torch.isfinite(z.grad).all())


# --- 3. bfloat16 regression targets --------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
def test_half_precision_regression_targets_match_float64(dtype: torch.dtype) -> None:
    rng = np.random.default_rng(2)
    x = torch.tensor(rng.normal(size=(20, 1)))
    y = torch.tensor(rng.normal(size=20)).to(dtype)
    out = torch.tensor(rng.normal(size=20))
    value = gibloss.GIBLoss()(x, out, y)
    reference = gibloss.GIBLoss()(x, out, y.double())  # the same (rounded) targets in float64
    assert torch.isfinite(value)
    torch.testing.assert_close(value, reference, rtol=0, atol=1e-12)


# --- 4. monitor with activations beyond float16's range ------------------------------------------


@pytest.mark.parametrize("on_disk", [False, True])
def test_monitor_closes_with_activations_beyond_float16(on_disk: bool, tmp_path) -> None:
    torch.manual_seed(0)
    x = torch.randn(50, 4)
    y = (x[:, 0] * 1e5 + 2e5).double()  # a regression target in raw units
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    with torch.no_grad():
        model[2].bias.fill_(1e5)
    path = tmp_path / "m.jsonl" if on_disk else None
    mon = gibloss.InformationPlaneMonitor(model, (x, y), path=path)
    mon.measure(step=0)
    mon.measure(step=1)
    mon.close()
    ranges = [r for r in mon.records if r["kind"] == "ib_run_range"]
    assert len(ranges) == 2
    for layer, (lo, hi) in ranges[0]["ranges"].items():
        assert np.isfinite(lo) and np.isfinite(hi) and lo < hi, layer
    lo, hi = ranges[0]["ranges"]["output"]
    assert 5e4 < hi < 2e5  # the real output range, not inf


# --- 5. relabelled multi-column symbols ---------------------------------------------------------


@pytest.mark.parametrize("estimator", ["binning", "gaussian_copula", "kde"])
def test_mi_is_invariant_to_relabelling_multi_column_symbols(estimator: str) -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(50, 1))
    b = rng.integers(0, 3, size=(50, 2))
    ref = gibloss.mutual_information(a, b, estimator)
    for relabel in (3 * b - 7, -b, b * 1000 + 10**12):
        assert gibloss.mutual_information(a, relabel, estimator) == pytest.approx(ref, abs=1e-12)
    # the value is that of the dense joint symbol (one code per distinct row)
    _, joint = np.unique(b, axis=0, return_inverse=True)
    assert gibloss.mutual_information(a, joint.reshape(-1), estimator) == pytest.approx(
        ref, abs=1e-12
    )


# --- 6. width bins far apart ---------------------------------------------------------------------


def test_width_bins_are_dense_coded() -> None:
    est = BinningEstimator(strategy="width", width=0.07)
    y = np.array([0, 1, 0])
    for scale in (1e8, 1e18, 1e300):
        x = np.array([[-scale], [scale], [0.0]])
        codes = est.discretize(x)
        assert codes.max() == 2  # three occupied bins, coded 0..2
        mi = gibloss.mutual_information(x, y, est)
        assert mi == pytest.approx(gibloss.entropy(y), abs=1e-12)  # every row its own bin
        assert gibloss.estimators.binning.unique_row_fraction(x, est) == 1.0


# --- 7. KDE with huge and tiny magnitudes --------------------------------------------------------


@pytest.mark.parametrize("scale", [1e160, 1e300, 1e-160, 1e-300])
def test_kde_is_scale_free_at_extreme_magnitudes(scale: float) -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(50, 2))
    y = rng.integers(0, 2, 50)
    assert gibloss.mutual_information(a * scale, y, "kde") == pytest.approx(
        gibloss.mutual_information(a, y, "kde"), abs=1e-9
    )
    assert gibloss.mutual_information(a[:, :1] * scale, a[:, 1:], "kde") == pytest.approx(
        gibloss.mutual_information(a[:, :1], a[:, 1:], "kde"), abs=1e-9
    )
    # a differential entropy moves by log2 of the scale per column
    shift = 2 * np.log2(scale)
    assert gibloss.entropy(a * scale, "kde") - shift == pytest.approx(
        gibloss.entropy(a, "kde"), abs=1e-6
    )


def test_uniform_binning_at_the_float64_limit() -> None:
    a = np.array([[-1.7e308], [1.7e308], [0.0], [1e300]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warnings
        codes = BinningEstimator(bins=4).discretize(a)
    assert codes.ravel().tolist() == [0, 3, 2, 2]


# --- 8. bad input accepted by GIBLoss ------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 10), (10, 1, 1)])
def test_gibloss_rejects_badly_shaped_targets(shape) -> None:
    x, z = torch.randn(10, 3), torch.randn(10, 3)
    with pytest.raises(ValueError, match="`y` must have shape"):
        gibloss.GIBLoss()(x, z, torch.randint(0, 3, shape))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_gibloss_rejects_non_finite_regression_targets(bad: float) -> None:
    x, z = torch.randn(10, 3), torch.randn(10)
    y = torch.randn(10)
    y[3] = bad
    with pytest.raises(ValueError, match="`y` contains 1 NaN or infinite"):
        gibloss.GIBLoss()(x, z, y)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0, True, "1"])
def test_gibloss_rejects_bad_weight(bad) -> None:
    with pytest.raises(ValueError, match="`weight`"):
        gibloss.GIBLoss(weight=bad)


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("temperature", 0.0),
        ("temperature", float("nan")),
        ("beta", float("inf")),
        ("z_bins", 0),
        ("pmi", "bogus"),
        ("reduction", "sum"),
    ],
)
def test_gibloss_validates_options_at_construction(name: str, bad) -> None:
    with pytest.raises(ValueError, match=f"`{name}`"):
        gibloss.GIBLoss(**{name: bad})


def test_pmi_weights_names_mode() -> None:
    with pytest.raises(ValueError, match="`mode` must be one of"):
        gibloss.pmi_weights(np.array([0, 1, 0, 1]), np.array([0, 1, 1, 0]), mode="bogus")


def test_import_gibloss_loads_no_sklearn_scipy_matplotlib_or_cli() -> None:
    import subprocess
    import sys

    code = (
        "import sys, gibloss; "
        "print(sorted(m for m in ('sklearn', 'scipy', 'matplotlib', 'gibloss.cli', "
        "'gibloss.plotting') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    lazy = subprocess.run(
        [sys.executable, "-c", "import gibloss; print(gibloss.plot_information_plane.__module__)"],
        capture_output=True, text=True, check=True,
    )
    assert lazy.stdout.strip() == "gibloss.plotting"

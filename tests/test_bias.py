"""Bias corrections and shuffled nulls: independent data reads 0; truth is kept."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import gibloss


@pytest.mark.parametrize("z_code", ["probs", "logits", "argmax"])
def test_independent_outputs_read_zero_after_the_shuffle_correction(z_code: str) -> None:
    rng = np.random.default_rng(0)
    n, k = 5000, 10
    y = rng.integers(0, k, n)
    z = rng.normal(size=(n, k)) * 3.0  # logits independent of the labels
    x = rng.normal(size=(n, 5))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        raw = gibloss.gib(x, z, y, estimator="binning", z_code=z_code)
        fixed = gibloss.gib(
            x, z, y, estimator="binning", z_code=z_code, bias_correction="shuffle", n_shuffles=5
        )
    if z_code != "argmax":  # every binned probability row unique: pure plug-in bias
        assert raw.prediction > 2.5
    assert abs(fixed.prediction) < 0.05
    assert abs(fixed.complexity) < 0.05
    null = fixed.diagnostics["null"]
    assert null["uncorrected_prediction"] == pytest.approx(raw.prediction)
    assert fixed.prediction == pytest.approx(raw.prediction - null["prediction"])
    np.testing.assert_allclose(fixed.single, raw.single - null["single"])


def test_null_is_reported_beside_plugin_values_without_changing_them() -> None:
    rng = np.random.default_rng(0)
    n, k = 3000, 4
    y = rng.integers(0, k, n)
    x = rng.normal(size=(n, 3))
    related = np.eye(k)[y] * 8.0  # logits that give the label away: I(Z;Y) = H(Y) ≈ 2 bits
    independent = rng.normal(size=(n, k)) * 3.0
    for z in (related, independent):
        raw = gibloss.gib(x, z, y, z_code="probs")
        shown = gibloss.gib(x, z, y, z_code="probs", null=5)
        fixed = gibloss.gib(x, z, y, z_code="probs", bias_correction="shuffle", n_shuffles=5)
        assert shown.prediction == raw.prediction and shown.complexity == raw.complexity
        np.testing.assert_array_equal(shown.single, raw.single)
        nl = shown.diagnostics["null"]
        assert {"prediction", "complexity", "whole", "single", "complement"} <= set(nl)
        assert "uncorrected_prediction" not in nl
        # the same permutations as the correction: the null it reports is what it would subtract
        assert nl["prediction"] == pytest.approx(fixed.diagnostics["null"]["prediction"])
        np.testing.assert_allclose(nl["single"], fixed.diagnostics["null"]["single"])
        assert shown.complexity - nl["complexity"] == pytest.approx(fixed.complexity)
    assert raw.prediction < 0.05 + nl["prediction"]  # independent outputs: all of it is bias
    # labels given away: the plug-in reads H(Y), its null the small bias of 16 cells
    related_null = gibloss.gib(x, related, y, z_code="probs", null=5).diagnostics["null"]
    entropy_y = gibloss.entropy(y)
    assert gibloss.gib(x, related, y, z_code="probs").prediction == pytest.approx(entropy_y)
    assert related_null["prediction"] < 0.01


def test_null_is_validated_and_not_mixed_with_a_correction() -> None:
    x, z, y = np.zeros((10, 2)), np.zeros((10, 2)), np.arange(10) % 2
    with pytest.raises(ValueError, match="`null` must be a non-negative integer"):
        gibloss.gib(x, z, y, null=-1)
    with pytest.raises(ValueError, match="`null` must be a non-negative integer"):
        gibloss.ib(x, z, y, null=True)
    with pytest.raises(ValueError, match="pass one or the other"):
        gibloss.gib(x, z, y, null=3, bias_correction="shuffle")
    with pytest.raises(ValueError, match="`null` and `n_boot` are not available"):
        gibloss.gib(x, z, y, z_code="soft", null=3)


def test_ib_null_beside_plugin_values() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(300, 3))
    y = (x[:, 0] > 0).astype(int)
    t = np.tanh(x @ rng.normal(size=(3, 4)))
    raw = gibloss.ib(x, t, y)
    shown = gibloss.ib(x, t, y, null=3)
    fixed = gibloss.ib(x, t, y, bias_correction="shuffle", n_shuffles=3)
    assert (shown.complexity, shown.prediction) == (raw.complexity, raw.prediction)
    assert shown.diagnostics["null"] == pytest.approx(fixed.diagnostics["null"])


def test_miller_madow_removes_the_small_sample_bias_of_a_well_sampled_table() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 4, 400), rng.integers(0, 5, 400)  # independent, 20 cells, 400 rows
    raw = gibloss.mutual_information(a, b)
    mm = gibloss.mutual_information(a, b, bias_correction="miller_madow")
    expected_bias = (4 - 1) * (5 - 1) / (2 * 400 * np.log(2))
    assert raw == pytest.approx(expected_bias, rel=0.6)  # the plug-in bias formula
    assert abs(mm) < raw / 3


@pytest.mark.parametrize("bias_correction", ["none", "miller_madow", "shuffle"])
def test_xor_synergy_is_one_bit_with_every_correction(bias_correction: str) -> None:
    rng = np.random.default_rng(2)
    x = rng.integers(0, 2, size=(4000, 2))
    y = x[:, 0] ^ x[:, 1]
    syn = gibloss.synergy(x, y, bias_correction=bias_correction)
    assert syn == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("bias_correction", ["none", "shuffle"])
def test_gaussian_closed_form_holds_with_the_shuffle_correction(bias_correction: str) -> None:
    rng = np.random.default_rng(3)
    rho = 0.8
    xy = rng.multivariate_normal([0, 0], [[1, rho], [rho, 1]], size=5000)
    truth = -0.5 * np.log2(1 - rho**2)
    mi = gibloss.mutual_information(
        xy[:, :1], xy[:, 1:], "gaussian_copula", bias_correction=bias_correction, n_shuffles=3
    )
    assert abs(mi - truth) / truth < 0.03


def test_appendix_e1_parity_synergy_holds_with_the_shuffle_correction() -> None:
    # Y = parity of N fair bits: synergy is 1 bit for the whole; singles and complements are 0.
    rng = np.random.default_rng(4)
    x = rng.integers(0, 2, size=(20000, 3))
    y = x.sum(axis=1) % 2
    res = gibloss.synergy(x, y, bias_correction="shuffle", n_shuffles=3)
    assert res == pytest.approx(1.0, abs=0.01)


def test_bad_bias_correction_is_named() -> None:
    x, y = np.zeros((10, 2)), np.arange(10) % 2
    with pytest.raises(ValueError, match="`bias_correction` must be one of"):
        gibloss.mutual_information(x, y, bias_correction="jackknife")
    with pytest.raises(ValueError, match="`bias_correction`='miller_madow' applies"):
        gibloss.mutual_information(x, y, "gaussian_copula", bias_correction="miller_madow")
    with pytest.raises(ValueError, match="`n_shuffles`"):
        gibloss.mutual_information(x, y, bias_correction="shuffle", n_shuffles=0)


def test_ib_shuffle_null_is_recorded() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(300, 3))
    y = (x[:, 0] > 0).astype(int)
    t = np.tanh(x @ rng.normal(size=(3, 4)))
    res = gibloss.ib(x, t, y, bias_correction="shuffle", n_shuffles=3)
    assert set(res.diagnostics["null"]) == {"complexity", "prediction"}
    raw = gibloss.ib(x, t, y)
    assert res.prediction == pytest.approx(raw.prediction - res.diagnostics["null"]["prediction"])


# --- single-logit binary classifiers ---------------------------------------------------------


def test_single_logit_binary_classifier_is_classification_everywhere() -> None:
    import torch

    rng = np.random.default_rng(6)
    x = rng.normal(size=(400, 3))
    y = (x[:, 0] + 0.3 * rng.normal(size=400) > 0).astype(int)
    logit = 3.0 * x[:, 0]
    two = np.column_stack([np.zeros(400), logit])  # the same model as two-class logits
    for shape in ((400,), (400, 1)):
        one = logit.reshape(shape)
        a = gibloss.gib(x, one, y, estimator="gaussian_copula")
        b = gibloss.gib(x, two, y, estimator="gaussian_copula")
        assert a.complexity == pytest.approx(b.complexity, abs=1e-12)
        assert a.prediction == pytest.approx(b.prediction, abs=1e-12) and a.prediction > 0.3
        loss = gibloss.GIBLoss()
        la = loss(x, torch.tensor(one), torch.tensor(y))
        lb = gibloss.GIBLoss()(x, torch.tensor(two), torch.tensor(y))
        assert float(la) == pytest.approx(float(lb), abs=1e-12)
    # float 0/1 labels are the same binary classifier; a regression is asked for (different)
    same = gibloss.gib(x, logit, y.astype(float), estimator="gaussian_copula")
    binary = gibloss.gib(x, two, y, estimator="gaussian_copula").complexity
    assert same.complexity == pytest.approx(binary, abs=1e-12)
    reg = gibloss.gib(x, logit, y.astype(float), estimator="gaussian_copula", task="regression")
    assert reg.complexity != pytest.approx(binary)


def test_single_logit_with_more_than_two_integer_classes_is_rejected() -> None:
    import torch

    x = np.random.default_rng(7).normal(size=(30, 2))
    y = np.arange(30) % 3
    with pytest.raises(ValueError, match="single output column"):
        gibloss.gib(x, x[:, 0], y)
    with pytest.raises(ValueError, match="single output column"):
        gibloss.GIBLoss()(x, torch.tensor(x[:, 0]), torch.tensor(y))


# --- the monitor records a shuffled null beside the plug-in plane -----------------------------


def test_monitor_records_the_shuffled_null_and_summary_subtracts_it(tmp_path) -> None:
    import torch

    torch.manual_seed(0)
    x = torch.randn(1000, 4)
    y = torch.randint(0, 10, (1000,))  # labels the model cannot know
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 10))
    path = tmp_path / "m.jsonl"
    with gibloss.InformationPlaneMonitor(model, (x, y), path=path) as mon:
        with torch.no_grad():
            model[2].weight.mul_(20.0)  # confident, spread-out outputs: many binned Z codes
        rec0 = mon.measure(step=0)
        rec1 = mon.measure(step=1)
    g = rec0["gib"]["binning"]
    plain = gibloss.gib(
        mon.features, model(x).detach().numpy(), y.numpy(), estimator="binning", bins=30
    )
    # the plane keeps the plug-in values ...
    assert g["prediction"] == pytest.approx(plain.prediction, abs=1e-12)
    assert g["complexity"] == pytest.approx(plain.complexity, abs=1e-12)
    # ... and the null beside them reads about the same: the outputs know nothing about y
    assert g["prediction"] > 1.0
    assert abs(g["prediction"] - g["null"]["prediction"]) < 0.1
    assert len(g["null"]["single"]) == mon.features.shape[1]
    assert rec1["gib"]["binning"]["null"]["complexity"] >= 0
    from gibloss.summary import summary_table

    text = summary_table(gibloss.read_records(path))
    assert "| end − null |" in text  # a column of its own
    g1 = rec1["gib"]["binning"]
    assert f"| {g1['complexity'] - g1['null']['complexity']:.3f} |" in text
    fig = gibloss.plot_information_plane(path, normalize=False)
    assert "shuffled null" in fig.axes[0].get_legend_handles_labels()[1]
    # IB terms carry their null too: I(T; Y) of outputs that know nothing about y is about its
    # null, and the IB plane draws it
    out = rec0["ib"]["binning"]["output"]
    plain_ib = gibloss.ib(x.numpy(), model(x).detach().numpy(), y.numpy(), bins=30)
    assert out["prediction"] == pytest.approx(plain_ib.prediction, abs=1e-12)
    assert abs(out["prediction"] - out["null"]["prediction"]) < 0.2 * out["prediction"]
    fig = gibloss.plot_information_plane(path, kind="ib", normalize=False)
    assert "shuffled null" in fig.axes[0].get_legend_handles_labels()[1]
    with pytest.raises(ValueError, match="`null`"):
        gibloss.InformationPlaneMonitor(model, (x, y), null=-1)

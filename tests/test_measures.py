"""GIB, IB, PMI weights and Q: the choices docs/theory.md makes explicit, on toys with answers."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import gibloss
from gibloss.estimators._discrete import dense, plugin_mi


def _two_class_toy(n: int = 1000, accuracy: float = 0.9):
    """Balanced two classes; the first `accuracy` fraction of each class is predicted correctly."""
    y = np.repeat([0, 1], n // 2)
    pred = y.copy()
    k = int(round((1 - accuracy) * n / 2))
    pred[:k] = 1
    pred[n // 2 : n // 2 + k] = 0
    return y, pred


def test_pmi_modes_differ_where_they_must() -> None:
    y, pred = _two_class_toy()
    correct = pred == y
    w = {m: gibloss.pmi_weights(pred, y, mode=m) for m in ("ratio", "ppmi", "literal", "none")}
    # r = 0.45 / 0.25 = 1.8 on correct cells, 0.05 / 0.25 = 0.2 on wrong ones
    assert w["ratio"][correct][0] / w["ratio"][~correct][0] == pytest.approx(9.0)
    assert np.all(w["ppmi"][~correct] == 0) and np.all(w["ppmi"][correct] > 0)
    np.testing.assert_allclose(w["none"], 1 / len(y))
    # drawing a cell with probability ∝ r(cell), then a row within it, reproduces P here because
    # both marginals are uniform: r(cell) ∝ P(cell). The docs say so.
    np.testing.assert_allclose(w["literal"], w["none"])
    assert not np.allclose(w["ratio"], w["none"])
    assert not np.allclose(w["ratio"], w["ppmi"])
    for v in w.values():
        assert v.sum() == pytest.approx(1.0)


def test_pmi_modes_change_gib_complexity_where_they_must(rng) -> None:
    y, pred = _two_class_toy()
    x = np.column_stack([y + 0.8 * rng.normal(size=y.size), rng.normal(size=y.size)])
    values = {
        m: gibloss.gib(x, pred, y, pmi=m, estimator="gaussian_copula").complexity
        for m in ("ratio", "ppmi", "none")
    }
    assert len({round(v, 6) for v in values.values()}) == 3


def test_perfect_accuracy_makes_q_a_relabelling_of_y(rng) -> None:
    """Theorem 1's setting: z_code="argmax" and 100 % accuracy; every pmi mode coincides."""
    y = np.repeat(np.arange(3), 200)
    x = np.column_stack([y + rng.normal(size=600), rng.normal(size=600), rng.normal(size=600)])
    logits = np.eye(3)[y] * 5.0 + 0.01 * rng.normal(size=(600, 3))
    expected_single = np.array(
        [gibloss.mutual_information(x[:, i], y, "gaussian_copula") for i in range(3)]
    )
    expected_comp = np.array(
        [gibloss.mutual_information(np.delete(x, i, 1), y, "gaussian_copula") for i in range(3)]
    )
    expected = (expected_single.sum() + expected_comp.sum()) / (2 * 3)
    for mode in ("ratio", "ppmi", "literal", "none"):
        qv = gibloss.build_q(logits, y, pmi=mode, z_code="argmax")
        assert plugin_mi(qv.codes, 3, dense(y)[0], 3) == pytest.approx(np.log2(3))
        np.testing.assert_allclose(qv.weights, 1 / 600)
        res = gibloss.gib(x, logits, y, estimator="gaussian_copula", pmi=mode, z_code="argmax")
        assert res.complexity == pytest.approx(expected, abs=1e-9)
        np.testing.assert_allclose(res.single, expected_single, atol=1e-9)
        assert res.prediction == pytest.approx(np.log2(3))


def test_q_pmi_groups_cells_by_ratio() -> None:
    y, pred = _two_class_toy()
    qv = gibloss.build_q(pred, y, q="pmi")
    # two distinct ratios (1.8 and 0.2) -> two Q values; default weighting is "none"
    assert len(np.unique(qv.codes)) == 2
    np.testing.assert_allclose(qv.weights, 1 / len(y))
    assert set(np.round(qv.log_ratio, 6)) == {round(np.log2(1.8), 6), round(np.log2(0.2), 6)}


def test_gib_shapes_objective_and_variants(rng) -> None:
    x = rng.normal(size=(400, 6))
    y = (x[:, 0] > 0).astype(int) + 2 * (x[:, 1] > 0)
    logits = np.column_stack([x[:, 0], -x[:, 0], x[:, 1], -x[:, 1]]) + rng.normal(size=(400, 4))
    for est in ("binning", "gaussian_copula", "kde"):
        res = gibloss.gib(x, logits, y, beta=2.0, estimator=est)
        assert res.single.shape == (6,) and res.complement.shape == (6,)
        assert res.complexity == pytest.approx(
            (res.single.sum() + res.complement.sum()) / (2 * 2.0 * 6)
        )
        assert res.objective == pytest.approx(res.prediction - res.complexity)
        assert res.settings["z_code"] == ("probs" if est == "binning" else "argmax")
        svw = gibloss.gib(x, logits, y, beta=2.0, estimator=est, variant="sum_vs_whole")
        assert svw.complexity == pytest.approx(res.single.sum() / 2.0)
        json.dumps(res.as_dict())  # records are JSON-serialisable


def test_prediction_term_uses_z_code(rng) -> None:
    y = rng.integers(0, 4, size=500)
    logits = np.eye(4)[y] * 3 + rng.normal(size=(500, 4))
    pred = logits.argmax(1)
    res = gibloss.gib(rng.normal(size=(500, 2)), logits, y, z_code="argmax")
    assert res.prediction == pytest.approx(gibloss.mutual_information(pred, y))
    res_p = gibloss.gib(rng.normal(size=(500, 2)), logits, y, z_code="probs", bins=5)
    assert res_p.diagnostics["n_z_codes"] > 4


def test_resample_is_seeded_and_close_to_weighted(rng) -> None:
    x = rng.normal(size=(3000, 3))
    y = (x[:, 0] > 0).astype(int)
    pred = np.where(rng.random(3000) < 0.8, y, 1 - y)
    a = gibloss.gib(x, pred, y, estimator="gaussian_copula", sampling="resample", random_state=1)
    b = gibloss.gib(x, pred, y, estimator="gaussian_copula", sampling="resample", random_state=1)
    c = gibloss.gib(x, pred, y, estimator="gaussian_copula", sampling="weighted")
    assert a.complexity == b.complexity
    assert a.complexity == pytest.approx(c.complexity, rel=0.15)


def test_regression_outputs_are_binned(rng) -> None:
    x = rng.normal(size=(800, 3))
    target = x[:, 0] + 0.1 * rng.normal(size=800)
    out = x[:, 0]
    res = gibloss.gib(x, out, target, bins=10)
    assert res.prediction > 1.0
    assert res.single[0] > res.single[1]


def test_ib_terms(rng) -> None:
    x = rng.normal(size=(500, 4))
    t = np.tanh(x @ rng.normal(size=(4, 3)))
    y = (x[:, 0] > 0).astype(int)
    r = gibloss.ib(x, t, y, bins=10)
    # distinct inputs, deterministic layer: I(X;T) = H(T) for binning
    assert r.complexity == pytest.approx(gibloss.entropy(t, bins=10))
    assert 0 < r.prediction <= 1.0
    assert 0 < r.diagnostics["unique_row_fraction"] <= 1
    g = gibloss.ib(x, t, y, estimator="gaussian_copula")
    assert g.complexity > 0 and 0 < g.prediction <= 1.0


def test_synergy_sum_vs_whole_on_xor() -> None:
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    assert gibloss.synergy(x, x[:, 0] ^ x[:, 1], variant="sum_vs_whole") == pytest.approx(1.0)
    assert gibloss.synergy(x[:, [0, 0]], x[:, 0], variant="sum_vs_whole") == pytest.approx(-1.0)


def test_ppmi_all_zero_falls_back_with_warning() -> None:
    y = np.array([0, 1, 0, 1])
    pred = np.array([0, 0, 1, 1])  # independent of y: every log r = 0
    with pytest.warns(RuntimeWarning, match="uniform"):
        w = gibloss.pmi_weights(pred, y, mode="ppmi")
    np.testing.assert_allclose(w, 0.25)


def test_gib_bins_reaches_the_binning_estimator(rng) -> None:
    x = rng.normal(size=(2000, 4))
    y = (x[:, 0] > 0).astype(int)
    logits = np.column_stack([-x[:, 0], x[:, 0]])
    res = gibloss.gib(x, logits, y, estimator="binning", bins=3)
    assert res.diagnostics["unique_row_fraction"] <= 3**4 / 2000
    assert res.settings["z_bins"] == 3


def test_a_hidden_layer_as_z_needs_an_explicit_coding(rng) -> None:
    x = rng.normal(size=(400, 3))
    y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0)
    hidden = np.tanh(x @ rng.normal(size=(3, 16)))
    with pytest.raises(ValueError, match="z_code='binned'"):
        gibloss.gib(x, hidden, y)  # 16 columns cannot be logits of 3 classes
    with pytest.raises(TypeError, match="z_code='binned'"):
        gibloss.gib(x, hidden, x[:, 0])  # several columns beside a float target
    res = gibloss.gib(x, hidden, y, z_code="binned", bins=4)
    # the same partition as the logits coding, without reading columns as classes
    codes, _ = gibloss.BinningEstimator(bins=4).codes(hidden)
    assert res.prediction == pytest.approx(
        gibloss.mutual_information(codes, y, estimator="binning"), abs=1e-12
    )
    assert res.settings["z_code"] == "binned" and "mean_max_p" not in res.diagnostics
    # a float target beside a representation is binned, as a regression target
    reg = gibloss.gib(x, hidden, x[:, 0], z_code="binned", bins=4)
    assert 0 < reg.prediction <= np.log2(4) + 1e-9
    # logits with one column per class are still read under "auto"
    assert gibloss.gib(x, hidden[:, :3], y).settings["z_code"] == "probs"


def test_synergy_map_reads_xor_as_synergy_and_copies_as_redundancy() -> None:
    # XOR of two fair bits (a third, irrelevant bit): II = +1 bit for the two inputs, 0 for the
    # third; two copies of the label: II = -1 bit each (exact discrete values, all 8 rows)
    bits = np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)])
    y = bits[:, 0] ^ bits[:, 1]
    res = gibloss.gib(bits, y, y, z_code="argmax", pmi="none")
    np.testing.assert_allclose(res.interaction, [1.0, 1.0, 0.0], atol=1e-12)
    copies = np.column_stack([y, y])
    red = gibloss.gib(copies, y, y, z_code="argmax", pmi="none")
    np.testing.assert_allclose(red.interaction, [-1.0, -1.0], atol=1e-12)
    # Eq. 5's complexity from the map
    n_feat = bits.shape[1]
    from_map = (n_feat * res.whole - res.interaction.sum()) / (2 * n_feat)
    assert res.complexity == pytest.approx(from_map)
    assert res.as_dict()["interaction"] == pytest.approx([1.0, 1.0, 0.0], abs=1e-12)


def test_deprecated_measure_spellings_warn_and_keep_their_meaning() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 3))
    y = (x[:, 0] > 0).astype(int)
    logits = np.stack([-x[:, 0], x[:, 0]], axis=1)
    with pytest.warns(DeprecationWarning, match="by position"):
        old = gibloss.gib(x, logits, y, 2.0, "binning")
    assert old.complexity == gibloss.gib(x, logits, y, beta=2.0).complexity
    with pytest.warns(DeprecationWarning, match="estimator='gaussian_copula'"):
        old = gibloss.gib(x, logits, y, estimator="gcmi")
    assert old.complexity == gibloss.gib(x, logits, y, estimator="gaussian_copula").complexity
    with pytest.warns(DeprecationWarning, match="z_bins=5"):
        old = gibloss.gib(x, logits, y, estimator="kde", z_code="probs", bins=5)
    new = gibloss.gib(x, logits, y, estimator="kde", z_code="probs", z_bins=5)
    assert old.complexity == new.complexity and new.settings["z_bins"] == 5
    assert gibloss.gib(x, logits, y, bins=7).settings["z_bins"] == 7  # binning: both
    assert gibloss.gib(x, logits, y, bins=7, z_bins=4).settings["z_bins"] == 4
    with pytest.warns(DeprecationWarning, match="variant='synergy'"):
        old_syn = gibloss.synergy(x, y, kind="feature")
    assert old_syn == gibloss.synergy(x, y, variant="synergy")
    with pytest.raises(TypeError, match="positional"), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        args = (1.0, "binning", None, "weighted", "auto", "cell", "synergy", None, None, 0)
        gibloss.gib(x, logits, y, *args, 1.0, 1.0, "none", 10, 0, 0.95, "extra")

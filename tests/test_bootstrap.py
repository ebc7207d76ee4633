"""Bootstrap intervals: the vectorised path against the per-resample one, and coverage."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gibloss
from gibloss.estimators import BinningEstimator, Estimator
from gibloss.pmi import pmi_mass


def _classifier_data(seed: int, n: int = 1500, n_feat: int = 6):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = np.eye(3)[y] @ rng.normal(size=(3, n_feat)) + rng.normal(size=(n, n_feat))
    logits = x @ rng.normal(size=(n_feat, 3)) + rng.normal(size=(n, 3))
    return x, logits, y


@pytest.mark.parametrize("pmi", ["ratio", "ppmi", "literal", "none"])
def test_counts_as_memberships_equal_repeated_rows(pmi) -> None:
    # the resample's measure from counts equals the measure of the rows written out c_j times
    rng = np.random.default_rng(0)
    n = 300
    z = torch.as_tensor(rng.integers(0, 4, n))
    y = torch.as_tensor((z.numpy() + rng.integers(0, 2, n)) % 3)
    counts = rng.multinomial(n, np.full(n, 1.0 / n))
    mass, _, _ = pmi_mass(torch.as_tensor(counts, dtype=torch.float64), None, z, y, 3, 4, pmi)
    rep = np.repeat(np.arange(n), counts)
    mass_rep, _, _ = pmi_mass(torch.ones(n, dtype=torch.float64), None, z[rep], y[rep], 3, 4, pmi)
    per_row = np.zeros(n)
    np.add.at(per_row, rep, mass_rep.numpy())
    np.testing.assert_allclose(mass.numpy(), per_row, atol=1e-15)


def test_batched_binning_terms_equal_one_call_per_measure() -> None:
    x, logits, y = _classifier_data(1)
    qv = gibloss.build_q(logits, y, z_code="probs", bins=8)
    est = BinningEstimator(bins=8)
    rng = np.random.default_rng(2)
    w = rng.multinomial(len(y), np.full(len(y), 1.0 / len(y)), size=5) * qv.weights
    w = w / w.sum(axis=1, keepdims=True)
    fast = est.feature_terms_batch(x, qv.codes[:, None], w)
    slow = Estimator.feature_terms_batch(est, x, qv.codes[:, None], w)  # the generic loop
    for a, b in zip(fast, slow, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-12)


def test_gib_bootstrap_is_seeded_and_brackets_the_estimate() -> None:
    x, logits, y = _classifier_data(3)
    res = gibloss.gib(x, logits, y, estimator="gaussian_copula", n_boot=40, random_state=5)
    again = gibloss.gib(x, logits, y, estimator="gaussian_copula", n_boot=40, random_state=5)
    b = res.diagnostics["bootstrap"]
    np.testing.assert_array_equal(b["complexity"], again.diagnostics["bootstrap"]["complexity"])
    assert b["n_boot"] == 40 and b["level"] == 0.95
    assert b["prediction"][0] <= res.prediction <= b["prediction"][1]
    assert b["complexity"][0] <= res.complexity <= b["complexity"][1]
    assert np.asarray(b["single"]).shape == (2, x.shape[1])
    assert 0 < b["se"]["complexity"] < 0.2
    # a shuffle correction shifts the interval by its (fixed) null
    corr = gibloss.gib(
        x, logits, y, estimator="binning", bins=6, n_boot=20, bias_correction="shuffle"
    )
    plain = gibloss.gib(x, logits, y, estimator="binning", bins=6, n_boot=20)
    shift = corr.diagnostics["null"]["prediction"]
    np.testing.assert_allclose(
        corr.diagnostics["bootstrap"]["prediction"],
        plain.diagnostics["bootstrap"]["prediction"] - shift,
        atol=1e-12,
    )


def test_prediction_interval_covers_a_known_truth() -> None:
    # Z = Y flipped with probability 0.1: I(Z; Y) = 1 - H(0.1) bits; a well-sampled 2 x 2 table
    truth = 1.0 + 0.1 * np.log2(0.1) + 0.9 * np.log2(0.9)
    covered, widths = 0, []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        y = rng.integers(0, 2, 800)
        pred = np.where(rng.random(800) < 0.1, 1 - y, y)
        x = rng.normal(size=(800, 2))
        res = gibloss.gib(x, pred, y, n_boot=200, random_state=seed)
        lo, hi = res.diagnostics["bootstrap"]["prediction"]
        covered += lo <= truth <= hi
        widths.append(hi - lo)
    assert covered >= 16, covered  # 95 % nominal; 16/20 or fewer has probability < 2 %
    assert 0.05 < np.mean(widths) < 0.2


def test_ib_bootstrap_and_bad_arguments() -> None:
    x, logits, y = _classifier_data(4, n=400)
    r = gibloss.ib(x, logits, y, n_boot=10)
    lo, hi = r.diagnostics["bootstrap"]["prediction"]
    assert lo <= hi and r.diagnostics["bootstrap"]["n_boot"] == 10
    with pytest.raises(ValueError, match="`n_boot`"):
        gibloss.gib(x, logits, y, n_boot=1)
    with pytest.raises(ValueError, match="`n_boot`"):
        gibloss.gib(x, logits, y, n_boot=-3)
    with pytest.raises(ValueError, match="`level`"):
        gibloss.gib(x, logits, y, n_boot=5, level=95)
    with pytest.raises(ValueError, match="sampling='weighted'"):
        gibloss.gib(x, logits, y, n_boot=5, sampling="resample")
    with pytest.raises(ValueError, match="n_boot"):
        gibloss.gib(x, logits, y, n_boot=5, z_code="soft")

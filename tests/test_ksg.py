"""The kNN estimator against closed forms and against scikit-learn's implementation of Ross."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.feature_selection import mutual_info_classif

import gibloss
from gibloss.estimators import KSGEstimator

_GRID = np.linspace(-10, 10, 20001)


def _pdf(t: np.ndarray, m: float) -> np.ndarray:
    return np.exp(-0.5 * (t - m) ** 2) / np.sqrt(2 * np.pi)


def _mixture_mi(prior: float, mu: float = 1.0) -> float:
    """I(X; C) in bits for C ~ Bernoulli(1 - prior), X | C ~ N(+-mu, 1), by quadrature."""
    mix = prior * _pdf(_GRID, -mu) + (1 - prior) * _pdf(_GRID, mu)
    h_mix = -np.trapezoid(mix * np.log2(mix), _GRID)
    return float(h_mix - 0.5 * np.log2(2 * np.pi * np.e))


def test_ksg_matches_closed_form_gaussian_mi() -> None:
    rng = np.random.default_rng(7)
    for rho in (0.5, 0.9):
        xy = rng.multivariate_normal([0, 0], [[1, rho], [rho, 1]], size=4000)
        truth = -0.5 * np.log2(1 - rho**2)
        assert gibloss.mutual_information(xy[:, 0], xy[:, 1], "ksg") == pytest.approx(
            truth, rel=0.05
        )
    x = rng.normal(size=(3000, 1))
    assert gibloss.mutual_information(x, rng.normal(size=(3000, 1)), "ksg") < 0.02


def test_ksg_entropy_matches_closed_form() -> None:
    rng = np.random.default_rng(3)
    z = rng.normal(size=(4000, 2)) * [1.0, 3.0]
    truth = 0.5 * np.log2((2 * np.pi * np.e) ** 2 * 9.0)
    assert gibloss.entropy(z, "ksg") == pytest.approx(truth, abs=0.05)


def test_ross_equals_scikit_learn_and_the_quadrature_truth() -> None:
    rng = np.random.default_rng(5)
    n = 5000
    c = rng.integers(0, 2, size=n)
    x = (2 * c - 1) + rng.normal(size=n)
    ours = gibloss.mutual_information(x, c, "ksg")
    # scikit-learn scales, adds the same seeded tie-breaking noise and counts the same way
    theirs = mutual_info_classif(x[:, None], c, n_neighbors=3, random_state=0)[0] / np.log(2)
    assert ours == pytest.approx(theirs, abs=1e-12)
    assert ours == pytest.approx(_mixture_mi(0.5), rel=0.06)


def test_weights_that_are_a_function_of_the_symbol_change_its_prior() -> None:
    # the PMI weights of Q (q="cell") are a function of Q's value: the weighted estimate must
    # read the mixture with the reweighted prior, whose truth is known by quadrature
    rng = np.random.default_rng(6)
    n = 8000
    c = rng.integers(0, 2, size=n)
    x = (2 * c - 1) + rng.normal(size=n)
    w = np.where(c == 0, 0.8, 0.2)
    w = w / w.sum()
    est = KSGEstimator().mutual_information(x[:, None], c[:, None], w)
    assert est == pytest.approx(_mixture_mi(0.8), rel=0.06)
    assert abs(_mixture_mi(0.8) - _mixture_mi(0.5)) > 0.1  # the weights had to matter
    with pytest.raises(ValueError, match="uniform weights"):
        KSGEstimator().mutual_information(x[:, None], x[:, None] + 1.0, w)


def test_gib_and_ib_with_ksg() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 1500)
    x = np.eye(3)[y] @ rng.normal(size=(3, 4)) + rng.normal(size=(1500, 4))
    logits = x @ rng.normal(size=(4, 3))
    res = gibloss.gib(x, logits, y, estimator="ksg")
    assert res.settings["z_code"] == "argmax"
    assert 0 < res.complexity <= res.diagnostics["h_q"] + 1e-9
    gc = gibloss.gib(x, logits, y, estimator="gaussian_copula")
    assert res.whole == pytest.approx(gc.whole, rel=0.25)  # two consistent estimators agree
    shuffled = gibloss.gib(x, logits, y, estimator="ksg", bias_correction="shuffle", n_shuffles=2)
    assert shuffled.diagnostics["null"]["complexity"] < 0.1 * res.complexity
    r = gibloss.ib(x, logits, y, estimator="ksg")
    assert r.complexity > 0 and r.prediction > 0


def test_bad_ksg_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="`k`"):
        KSGEstimator(k=0)
    with pytest.raises(ValueError, match="`noise`"):
        KSGEstimator(noise=float("nan"))
    with pytest.raises(ValueError, match="more than k rows"):
        gibloss.mutual_information(np.arange(3.0), np.arange(3.0) * 2, "ksg")

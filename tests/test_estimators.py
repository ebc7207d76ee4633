"""Estimator internals: the batched 2N+1 paths equal a per-term computation; binning strategies."""

from __future__ import annotations

import numpy as np
import pytest

import gibloss
from gibloss.estimators import (
    BinningEstimator,
    Estimator,
    GaussianCopulaEstimator,
    KDEEstimator,
    get_estimator,
    unique_row_fraction,
)
from gibloss.estimators._discrete import dense, plugin_mi


def _per_term_binning(est: BinningEstimator, x: np.ndarray, t: np.ndarray, w=None):
    """Straightforward reference: np.unique over the binned rows of every subset, one at a time."""
    codes = est.discretize(x)
    tc, kt = dense(t[:, 0])

    def mi(cols: list[int]) -> float:
        if not cols:
            return 0.0
        _, inv = np.unique(codes[:, cols], axis=0, return_inverse=True)
        inv = inv.reshape(-1)
        return plugin_mi(inv, int(inv.max()) + 1, tc, kt, w)

    n = x.shape[1]
    single = np.array([mi([i]) for i in range(n)])
    comp = np.array([mi([j for j in range(n) if j != i]) for i in range(n)])
    return mi(list(range(n))), single, comp


@pytest.mark.parametrize("n_features", [1, 2, 5, 12])
@pytest.mark.parametrize("strategy", ["uniform", "quantile", "width", "fixed"])
@pytest.mark.parametrize("weighted", [False, True])
def test_binning_vectorised_equals_per_term(n_features, strategy, weighted, rng) -> None:
    x = rng.normal(size=(600, n_features))
    t = (x[:, :1] + rng.normal(size=(600, 1)) > 0).astype(np.int64) + rng.integers(0, 2, (600, 1))
    kwargs = {"width": 0.5} if strategy == "width" else {}
    if strategy == "fixed":
        kwargs = {"range": (-1.0, 1.0)}
    est = BinningEstimator(bins=4, strategy=strategy, **kwargs)
    w = rng.random(600) if weighted else None
    if w is not None:
        w = w / w.sum()
    ft = est.feature_terms(x, t, w)
    whole, single, comp = _per_term_binning(est, x, t, w)
    assert ft.whole == pytest.approx(whole, abs=1e-12)
    np.testing.assert_allclose(ft.single, single, atol=1e-12)
    if n_features > 1:
        np.testing.assert_allclose(ft.complement, comp, atol=1e-12)
    else:
        assert ft.complement[0] == 0.0


def _gauss_entropy_bits(g: np.ndarray, w: np.ndarray) -> float:
    """Bias-corrected weighted Gaussian entropy of one subset, from scratch (numpy, scipy)."""
    from scipy.special import psi

    n_eff = w.sum() ** 2 / np.square(w).sum()
    mu = (w[:, None] * g).sum(0) / w.sum()
    c = g - mu
    cov = (w[:, None] * c).T @ c / w.sum() * n_eff / (n_eff - 1)
    d = cov.shape[0]
    assert n_eff > d + 1  # this reference has no shrinkage: keep the classes large
    cov[np.diag_indices(d)] += 1e-6
    h = np.log(np.diag(np.linalg.cholesky(cov))).sum() + 0.5 * d * (np.log(2 * np.pi) + 1)
    k = np.arange(1, d + 1)
    h -= d * (np.log(2) - np.log(n_eff - 1)) / 2 + (psi((n_eff - k) / 2) / 2).sum()
    return h / np.log(2)


def _naive_gaussian_copula_terms(x: np.ndarray, t: np.ndarray, w: np.ndarray):
    """Every GIB term of the Gaussian copula against symbols, one subset at a time.

    Independent of the package: scipy's average ranks and normal quantiles, numpy's Cholesky,
    ``I = H(G) - sum_c p(c) H(G | c)`` clipped to ``[0, H(C)]``.
    """
    from scipy.special import ndtri
    from scipy.stats import rankdata

    g = ndtri(rankdata(x, method="average", axis=0) / (x.shape[0] + 1))
    classes = np.unique(t)
    p = np.array([w[t == c].sum() for c in classes])
    h_c = -(p * np.log2(p)).sum()

    def mi(cols: list[int]) -> float:
        h = _gauss_entropy_bits(g[:, cols], w)
        cond = sum(
            pc * _gauss_entropy_bits(g[t == c][:, cols], w[t == c] / pc)
            for c, pc in zip(classes, p, strict=True)
        )
        return min(max(h - cond, 0.0), h_c)

    n = x.shape[1]
    single = np.array([mi([i]) for i in range(n)])
    comp = np.array([mi([j for j in range(n) if j != i]) for i in range(n)])
    return mi(list(range(n))), single, comp


def test_gaussian_copula_terms_equal_an_independent_per_subset_implementation(rng) -> None:
    n = 900
    x = rng.normal(size=(n, 4))
    x[:, 3] = np.round(x[:, 3])  # tied values
    t = ((x[:, 0] + x[:, 1]) > 0).astype(np.int64) + rng.integers(0, 2, n)
    w = rng.random(n)
    w /= w.sum()
    fast = GaussianCopulaEstimator().feature_terms(x, t[:, None], w)
    whole, single, comp = _naive_gaussian_copula_terms(x, t, w)
    assert fast.whole == pytest.approx(whole, abs=1e-9)
    np.testing.assert_allclose(fast.single, single, atol=1e-9)
    np.testing.assert_allclose(fast.complement, comp, atol=1e-9)


@pytest.mark.parametrize(
    ("est", "target_kind"),
    [
        (GaussianCopulaEstimator(), "continuous"),  # entropies of joint Gaussians, one by one
        (KDEEstimator(), "discrete"),  # KDE's own per-term mutual information
        (KDEEstimator(), "continuous"),
    ],
)
def test_batched_equals_generic_loop(est: Estimator, target_kind: str, rng) -> None:
    n = 300
    x = rng.normal(size=(n, 4))
    x[:, 3] = np.round(x[:, 3])  # tied values
    if target_kind == "discrete":
        t = ((x[:, 0] + x[:, 1]) > 0).astype(np.int64)[:, None] + rng.integers(0, 2, (n, 1))
    else:
        t = x[:, :1] + 0.5 * rng.normal(size=(n, 1))
    w = rng.random(n)
    w /= w.sum()
    fast = est.feature_terms(x, t, w)
    slow = Estimator.feature_terms(est, x, t, w)
    assert fast.whole == pytest.approx(slow.whole, abs=1e-9)
    np.testing.assert_allclose(fast.single, slow.single, atol=1e-9)
    np.testing.assert_allclose(fast.complement, slow.complement, atol=1e-9)


def test_binning_saturation_is_reported_and_exact(rng) -> None:
    x = rng.normal(size=(500, 20))
    q = rng.integers(0, 3, size=(500, 1))
    ft = BinningEstimator(bins=30).feature_terms(x, q)
    h_q = gibloss.entropy(q)
    assert ft.diagnostics["unique_row_fraction"] == 1.0
    assert ft.diagnostics["saturated"].all()
    np.testing.assert_allclose(ft.complement, h_q, atol=1e-12)
    assert ft.whole == pytest.approx(h_q, abs=1e-12)


def test_integer_columns_are_symbols_not_rebinned() -> None:
    x = np.array([0, 1000, 1, 999, 2, 998] * 10)
    y = np.arange(60) % 6
    # Six distinct symbols, each mapped to one y value: MI = H(Y) = log2(6) whatever `bins` is.
    assert gibloss.mutual_information(x, y, bins=2) == pytest.approx(np.log2(6))
    # As floats, 2 bins merge them.
    assert gibloss.mutual_information(x.astype(float), y, bins=2) == pytest.approx(1.0)


def test_bool_arrays_are_symbols() -> None:
    a = np.array([True, False, True, False])
    assert gibloss.entropy(a) == pytest.approx(1.0)


def test_binning_strategies_edges() -> None:
    x = np.array([[-5.0], [0.0], [0.5], [5.0]])
    fixed = BinningEstimator(bins=2, strategy="fixed", range=(-1, 1)).discretize(x)
    np.testing.assert_array_equal(fixed[:, 0], [0, 1, 1, 1])  # clipped into edge bins
    width = BinningEstimator(strategy="width", width=1.0).discretize(x)
    # grid cells -5, 0, 0, 5 (width 1, anchored at 0), dense-coded in order: memory stays O(n)
    np.testing.assert_array_equal(width[:, 0], [0, 1, 1, 2])
    uniform = BinningEstimator(bins=10).discretize(x)
    np.testing.assert_array_equal(uniform[:, 0], [0, 5, 5, 9])
    quant = BinningEstimator(bins=4, strategy="quantile").discretize(np.arange(8.0)[:, None])
    assert np.bincount(quant[:, 0]).tolist() == [2, 2, 2, 2]


def test_unique_row_fraction() -> None:
    x = np.array([[0, 0], [0, 0], [1, 0], [1, 1]])
    assert unique_row_fraction(x) == pytest.approx(0.75)


def test_integer_weights_equal_row_duplication(rng) -> None:
    x = rng.normal(size=(50, 3))
    q = rng.integers(0, 3, size=50)
    counts = rng.integers(1, 4, size=50)
    dup_x, dup_q = np.repeat(x, counts, axis=0), np.repeat(q, counts)
    est = BinningEstimator(bins=3, strategy="fixed", range=(-2, 2))
    a = gibloss.mutual_information(x, q, est, weights=counts)
    b = gibloss.mutual_information(dup_x, dup_q, est)
    assert a == pytest.approx(b, abs=1e-12)


def test_get_estimator_resolution() -> None:
    assert isinstance(get_estimator("gaussian_copula"), GaussianCopulaEstimator)
    assert isinstance(get_estimator("gaussian_copula"), GaussianCopulaEstimator)
    assert get_estimator("binning", bins=7).bins == 7
    est = KDEEstimator()
    assert get_estimator(est) is est
    with pytest.raises(ValueError, match="estimator"):
        get_estimator("histogram")
    with pytest.raises(TypeError, match="estimator object"):
        get_estimator(est, bins=3)
    with pytest.raises(TypeError, match="bad option"):
        get_estimator("kde", bins=3)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"bins": 0}, "bins"),
        ({"strategy": "equal"}, "strategy"),
        ({"strategy": "fixed"}, "range"),
        ({"strategy": "fixed", "range": (1, 0)}, "range"),
        ({"strategy": "width"}, "width"),
    ],
)
def test_binning_bad_hyper_parameters(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        BinningEstimator(**kwargs)


def test_gcmi_small_class_is_shrunk_not_crashing(rng) -> None:
    x = rng.normal(size=(40, 10))
    labels = np.zeros(40, dtype=np.int64)
    labels[:3] = 1  # 3 samples in 10 dimensions
    ft = GaussianCopulaEstimator().feature_terms(x, labels[:, None])
    assert np.isfinite(ft.whole) and np.all(np.isfinite(ft.single))
    assert np.all(np.isfinite(ft.complement))
    assert ft.diagnostics["shrunk_classes"] == 1


def test_torch_inputs_accepted() -> None:
    torch = pytest.importorskip("torch")
    a = torch.tensor([0, 1, 0, 1])
    assert gibloss.entropy(a) == pytest.approx(1.0)
    f = torch.randn(100, 2, dtype=torch.float16)
    assert np.isfinite(gibloss.mutual_information(f[:, 0], f[:, 1], "gaussian_copula"))


def test_copula_normalize_matches_scipy_rankdata(rng) -> None:
    from scipy.special import ndtri
    from scipy.stats import rankdata

    from gibloss.estimators import copula_normalize

    a = np.column_stack(
        [
            rng.normal(size=300),
            np.round(rng.normal(size=300), 1),
            np.ones(300),
            rng.integers(0, 3, size=300),
        ]
    ).astype(float)
    expected = ndtri(rankdata(a, method="average", axis=0) / 301)
    np.testing.assert_allclose(copula_normalize(a), expected, atol=1e-12)


def test_a_subclass_that_implements_only_entropy_works_everywhere() -> None:
    class Gaussian(gibloss.Estimator):
        def entropy(self, a, weights=None):  # type: ignore[no-untyped-def]
            cov = np.atleast_2d(np.cov(a.T, aweights=weights))
            return 0.5 * np.log2(np.linalg.det(2 * np.pi * np.e * cov))

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 4000)
    x = (2.0 * y - 1.0)[:, None] + rng.normal(size=(4000, 2))
    # the Gaussian model's value: 0.5 log2(var(X) / var(X | Y)) = 0.5 log2(2) per column
    mi = gibloss.mutual_information(x[:, [0]], y, Gaussian())
    assert mi == pytest.approx(0.5, abs=0.03)
    logits = np.stack([-x.sum(1), x.sum(1)], axis=1)
    res = gibloss.gib(x, logits, y, estimator=Gaussian(), z_code="argmax")
    assert np.all(res.single > 0.3)
    np.testing.assert_allclose(res.complement, res.single[::-1])  # N = 2: X^{-1} is X^2
    assert 0.0 < res.complexity <= res.diagnostics["h_q"]


def test_gaussian_copula_limits_threads_only_when_asked(monkeypatch) -> None:
    import torch

    calls: list[int] = []
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    monkeypatch.setattr(torch, "set_num_threads", lambda k: calls.append(k))
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(300, 3)), rng.integers(0, 3, 300)
    gibloss.GaussianCopulaEstimator().feature_terms(x, y[:, None])
    assert calls == []  # the process-wide thread count is left alone by default
    gibloss.GaussianCopulaEstimator(limit_threads=True).feature_terms(x, y[:, None])
    assert calls == [1, 4]  # one thread during the call, restored after


def test_the_estimator_interface_says_what_the_measures_need() -> None:
    """Measures ask an estimator (discrete, default_z_code, relaxation), never its class."""
    import gibloss

    b, g = gibloss.BinningEstimator(bins=7), gibloss.GaussianCopulaEstimator(ridge=1e-6)
    assert (b.discrete, b.default_z_code) == (True, "probs")
    assert b.relaxation() == ("binning", {"bins": 7})
    assert not g.discrete and g.default_z_code == "argmax"
    opts = {"shrinkage": 0.1, "ridge": 1e-6, "bias_correct": True}
    assert g.relaxation() == ("gaussian_copula", opts)
    assert gibloss.BinningEstimator(bins=7, strategy="quantile").relaxation() is None
    assert gibloss.KDEEstimator().relaxation() is None

    class Gaussian(gibloss.Estimator):  # a user's estimator: continuous, no relaxation
        def entropy(self, a, weights=None):  # type: ignore[no-untyped-def]
            cov = np.atleast_2d(np.cov(a.T, aweights=weights))
            return 0.5 * np.log2(np.linalg.det(2 * np.pi * np.e * cov))

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3))
    z = rng.normal(size=(400, 2))
    y = rng.integers(0, 2, 400)
    r = gibloss.gib(x, z, y, estimator=Gaussian())  # z coded by its argmax, as declared
    assert r.diagnostics["n_z_codes"] <= 2
    with pytest.raises(ValueError, match="z_code`='soft'"):
        gibloss.gib(x, z, y, estimator=Gaussian(), z_code="soft")

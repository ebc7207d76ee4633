"""``GIBLoss.measure``, ``gib(z_code="soft")`` and the monitor's ``losses``: one quantity.

The loss, its measure and the exact soft-coded GIB are one computation; these tests hold them
together and to the exact hard-coded estimators in the limit.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import (
    bins_kw,
    three_class_batch,
)

import gibloss
from gibloss import GIBLoss

SURROGATES = {"binning": "binning", "gaussian_copula": "gaussian_copula"}


def _data(n: int = 300, seed: int = 0) -> tuple:
    return three_class_batch(n, seed)


@pytest.mark.parametrize("pmi", ["ratio", "ppmi", "literal", "none"])
@pytest.mark.parametrize("surrogate", list(SURROGATES))
def test_measure_equals_the_forward_value_and_the_soft_gib(surrogate: str, pmi: str) -> None:
    x, logits, y = _data()
    for temperature in (2.0, 0.5, 0.05):
        loss = GIBLoss(
            estimator=surrogate,
            pmi=pmi,
            temperature=temperature,
            **bins_kw(surrogate, 5),
            weight=3.0,
        )
        forward = loss(x, logits.clone().requires_grad_(True), y)
        measured = loss.measure(x, logits, y)
        assert not measured.complexity.requires_grad
        assert float(measured.complexity) * 3.0 == pytest.approx(float(forward.detach()), abs=1e-9)
        soft = gibloss.gib(
            x,
            logits.numpy(),
            y.numpy(),
            estimator=SURROGATES[surrogate],
            z_code="soft",
            temperature=temperature,
            **bins_kw(surrogate, 5),
            pmi=pmi,
        )
        assert soft.complexity == pytest.approx(float(measured.complexity), abs=1e-12)
        assert soft.prediction == pytest.approx(float(measured.prediction), abs=1e-12)
        np.testing.assert_allclose(soft.single, measured.single.numpy(), atol=1e-12)
        assert soft.settings["z_code"] == "soft"


def _oracle_soft_binning(
    x: np.ndarray, logits: np.ndarray, y: np.ndarray, bins: int, temperature: float, pmi: str
) -> tuple[float, np.ndarray, np.ndarray, float]:
    """The soft binning GIB terms written from their definition in plain numpy, sharing no code
    with the package: uniform bins per feature over its range; soft memberships
    ``m = softmax(z / T)``; the soft table ``P(h, c) = mean_j m_jc [y_j = h]`` and its ratio
    ``r = P(h, c) / (P(h) P(c))``; the measure ``mu_j(y_j, c) ∝ m_jc f(r)``; then the plug-in
    ``I(X_S; Q) = H(X_S) + H(Q) - H(X_S, Q)`` of the stochastic encoder for every subset."""
    n, n_feat = x.shape
    lo, hi = x.min(axis=0), x.max(axis=0)
    codes = np.clip(np.floor((x - lo) / (hi - lo) * bins), 0, bins - 1).astype(np.int64)
    e = np.exp((logits - logits.max(axis=1, keepdims=True)) / temperature)
    m = e / e.sum(axis=1, keepdims=True)
    k = m.shape[1]
    n_h = int(y.max()) + 1
    p_hc = np.zeros((n_h, k))
    np.add.at(p_hc, y, m / n)
    r = p_hc / (p_hc.sum(axis=1, keepdims=True) * p_hc.sum(axis=0, keepdims=True))
    f = {"ratio": r, "none": np.ones_like(r)}[pmi][y]  # (n, k): f(r(y_j, c))
    mu = m * f
    mu /= mu.sum()
    q_index = y[:, None] * k + np.arange(k)[None, :]  # the Q cell (y_j, c) of each entry

    def h(p: np.ndarray) -> float:
        p = p[p > 0]
        return float(-(p * np.log2(p)).sum())

    def mi(cols: list[int]) -> float:
        _, s = np.unique(codes[:, cols], axis=0, return_inverse=True)
        s = s.reshape(-1)
        joint = np.zeros((s.max() + 1, n_h * k))
        np.add.at(joint, (np.repeat(s, k), q_index.reshape(-1)), mu.reshape(-1))
        return h(joint.sum(axis=1)) + h(joint.sum(axis=0)) - h(joint.ravel())

    single = np.array([mi([i]) for i in range(n_feat)])
    comp = np.array([mi([j for j in range(n_feat) if j != i]) for i in range(n_feat)])
    whole = mi(list(range(n_feat)))
    return whole, single, comp, (single.sum() + comp.sum()) / (2 * n_feat)


@pytest.mark.parametrize("pmi", ["ratio", "none"])
def test_soft_binning_measure_equals_an_independent_numpy_computation(pmi: str) -> None:
    x, logits, y = _data(seed=7)
    for temperature in (2.0, 0.5):
        measured = GIBLoss(estimator="binning", bins=5, pmi=pmi, temperature=temperature).measure(
            x, logits, y
        )
        whole, single, comp, complexity = _oracle_soft_binning(
            x, logits.numpy(), y.numpy(), 5, temperature, pmi
        )
        assert float(measured.whole) == pytest.approx(whole, abs=1e-9)
        np.testing.assert_allclose(measured.single.numpy(), single, atol=1e-9)
        np.testing.assert_allclose(measured.complement.numpy(), comp, atol=1e-9)
        assert float(measured.complexity) == pytest.approx(complexity, abs=1e-9)


@pytest.mark.parametrize("q", ["cell", "z"])
@pytest.mark.parametrize("surrogate", list(SURROGATES))
def test_measure_with_hard_memberships_is_the_exact_argmax_coded_gib(surrogate: str, q) -> None:
    x, logits, y = _data(seed=3)
    hard = F.one_hot(logits.argmax(1), 3).double() * 1000.0  # memberships exactly 0 or 1
    for pmi in ("ratio", "none", "literal"):
        measured = GIBLoss(estimator=surrogate, **bins_kw(surrogate, 5), pmi=pmi, q=q).measure(
            x, hard, y
        )
        exact = gibloss.gib(
            x,
            logits.numpy(),
            y.numpy(),
            estimator=SURROGATES[surrogate],
            z_code="argmax",
            **bins_kw(surrogate, 5),
            pmi=pmi,
            q=q,
        )
        assert float(measured.complexity) == pytest.approx(exact.complexity, abs=1e-6)
        np.testing.assert_allclose(measured.single.numpy(), exact.single, atol=1e-6)
        np.testing.assert_allclose(measured.complement.numpy(), exact.complement, atol=1e-6)


def test_soft_binning_measure_tends_to_the_exact_value_as_temperature_falls() -> None:
    x, logits, y = _data(seed=5)
    exact = gibloss.gib(
        x, logits.numpy(), y.numpy(), estimator="binning", z_code="argmax", bins=5
    ).complexity
    gaps = [
        abs(
            float(
                GIBLoss(estimator="binning", temperature=t, bins=5).measure(x, logits, y).complexity
            )
            - exact
        )
        for t in (1.0, 0.3, 0.1, 0.03, 0.003)
    ]
    assert gaps[-1] < 0.01 * exact
    assert gaps[-1] < gaps[0]


@pytest.mark.parametrize("q", ["cell", "z"])
@pytest.mark.parametrize("surrogate", list(SURROGATES))
def test_sgd_on_the_loss_alone_lowers_its_measure(surrogate: str, q: str) -> None:
    x, logits, y = _data(n=200, seed=7)
    loss = GIBLoss(estimator=surrogate, **bins_kw(surrogate, 5), temperature=1.0, q=q)
    z = logits.clone().requires_grad_(True)
    before = float(loss.measure(x, z, y).complexity)
    opt = torch.optim.SGD([z], lr=5.0)
    for _ in range(5):
        opt.zero_grad()
        loss(x, z, y).backward()
        opt.step()
    after = float(loss.measure(x, z, y).complexity)
    assert after < before


def test_regression_measure_equals_the_soft_gib() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(120, 3))
    y = x[:, 0] + 0.3 * rng.normal(size=120)
    out = x[:, 0] + 0.5 * rng.normal(size=120)
    for surrogate, est in SURROGATES.items():
        m = GIBLoss(estimator=surrogate, **bins_kw(surrogate, 6)).measure(
            x, torch.tensor(out), torch.tensor(y)
        )
        g = gibloss.gib(x, out, y, estimator=est, z_code="soft", **bins_kw(est, 6))
        assert g.complexity == pytest.approx(float(m.complexity), abs=1e-12)


def test_soft_gib_rejects_what_it_cannot_compute() -> None:
    x, logits, y = _data(n=50)
    with pytest.raises(ValueError, match="`z_code`='soft'"):
        gibloss.gib(x, logits.numpy(), y.numpy(), estimator="kde", z_code="soft")
    with pytest.raises(ValueError, match="`q`"):
        gibloss.gib(x, logits.numpy(), y.numpy(), z_code="soft", q="pmi")
    with pytest.raises(ValueError, match="`sampling`"):
        gibloss.gib(x, logits.numpy(), y.numpy(), z_code="soft", sampling="resample")


def test_monitor_records_each_loss_measure_on_the_probe(tmp_path) -> None:
    torch.manual_seed(0)
    x, y = torch.randn(150, 4), torch.randint(0, 3, (150,))
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    losses = {
        "gib": GIBLoss(z_bins=5),
        "soft": GIBLoss(estimator="binning", bins=5, temperature=0.5),
    }
    with gibloss.InformationPlaneMonitor(
        model, (x, y), path=tmp_path / "m.jsonl", bins=5, losses=losses
    ) as mon:
        record = mon.measure(step=0)
    with torch.no_grad():
        out = model(x)
    for name, loss in losses.items():
        expected = loss.measure(x.numpy().astype(np.float64), out, y)
        assert record["losses"][name]["complexity"] == pytest.approx(
            float(expected.complexity), abs=1e-9
        )
    scalars = gibloss.monitor.record_scalars(record)
    assert "loss_measure/soft/complexity" in scalars
    stored = [r for r in gibloss.read_records(tmp_path / "m.jsonl") if r["kind"] == "measurement"]
    assert stored[0]["losses"]["gib"]["complexity"] == record["losses"]["gib"]["complexity"]
    with pytest.raises(TypeError, match="`losses\\['bad'\\]`"):
        gibloss.InformationPlaneMonitor(model, (x, y), losses={"bad": torch.nn.MSELoss()})


# --- not degenerate at training batch sizes --------------------------------------------------


def _batch(n: int = 128, n_feat: int = 50, seed: int = 0, informative: bool = True):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, size=n)
    centers = rng.normal(size=(10, n_feat))
    x = (centers[y] if informative else 0.0) + rng.normal(size=(n, n_feat))
    logits = torch.tensor(np.eye(10)[y] * 2.0 + rng.normal(size=(n, 10)), requires_grad=True)
    return x, logits, torch.tensor(y)


def test_saturated_soft_binning_partitions_contribute_h_q_without_a_confidence_reward() -> None:
    x, logits, y = _batch()
    loss = GIBLoss(estimator="binning", bins=30)
    value = loss(x, logits, y)
    terms = loss.last_terms
    assert terms.diagnostics["saturated_complements"] == 1.0  # every complement row is unique
    # each saturated complement contributes H(Q), as in the exact estimator with hard codes
    torch.testing.assert_close(terms.complement, terms.h_q.expand(50), atol=1e-12, rtol=0)
    # ... so its gradient is that of H(Q): no per-sample membership-entropy reward
    (g_value,) = torch.autograd.grad(value, logits)
    z = logits.detach().clone().requires_grad_(True)
    q = gibloss.functional.soft_q(z, y, bins=30)
    single = GIBLoss(estimator="binning", bins=30, null=False).terms(x, z, y).single
    h_q = gibloss.estimators._discrete.entropy_bits(q.cell_mass())
    (g_expected,) = torch.autograd.grad((single.sum() + 50 * h_q) / 100, z)
    torch.testing.assert_close(g_value, g_expected, atol=1e-10, rtol=0)


def test_gaussian_copula_complements_differ_across_features_at_batch_size() -> None:
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(10, 50))
    batch_only = GIBLoss(estimator="gaussian_copula", memory=0.0)
    default = GIBLoss(estimator="gaussian_copula")  # remembers cell sums across batches
    for _ in range(40):
        y = rng.integers(0, 10, size=128)
        x = centers[y] + 2.0 * rng.normal(size=(128, 50))
        logits = torch.tensor(np.eye(10)[y] * 2.0 + rng.normal(size=(128, 10)))
        logits.requires_grad_(True)  # as a model's: only such calls update the memory
        batch_only(x, logits, torch.tensor(y))
        default(x, logits, torch.tensor(y))
    # batch only: ~13 rows per cell for 50 features, every cell shrunk, every complement at H(Q)
    t = batch_only.last_terms
    assert t.diagnostics["shrunk_cells"] > 0
    torch.testing.assert_close(t.complement, t.h_q.expand(50), atol=1e-9, rtol=0)
    # with the memory: no shrunk cell, complements feature-specific and inside (0, H(Q))
    t = default.last_terms
    assert t.diagnostics["shrunk_cells"] == 0
    assert float(t.complement.std()) > 1e-2
    assert 0.0 < float(t.complement.min()) and float(t.complement.max()) < float(t.h_q) - 0.1
    # the default's memory is the loss's state; measure() never uses it
    m = default.measure(x, logits, torch.tensor(y))
    assert float(m.complexity) != pytest.approx(float(t.complexity), abs=1e-3)
    default.reset_memory()
    fresh = default(x, logits, torch.tensor(y))
    assert float(fresh.detach()) == pytest.approx(float(m.complexity), abs=1e-9)


def test_memory_is_rejected_where_it_cannot_apply() -> None:
    with pytest.raises(ValueError, match="`memory_decay` > 0 needs"):
        GIBLoss(estimator="binning", memory=0.5)
    with pytest.raises(ValueError, match="`memory_decay` must lie in"):
        GIBLoss(memory=1.0)
    loss = GIBLoss()
    x, logits, y = _batch(n=64, n_feat=5)
    loss(x, logits, y)
    with pytest.raises(ValueError, match="`x` has 4 feature columns"):
        loss(x[:, :4], logits, y)


@pytest.mark.parametrize("surrogate", list(SURROGATES))
def test_single_terms_exceed_their_shuffled_null_only_when_x_is_informative(surrogate) -> None:
    gaps = {}
    for informative in (True, False):
        x, logits, y = _batch(n=256, n_feat=10, seed=1, informative=informative)
        loss = GIBLoss(estimator=surrogate, **bins_kw(surrogate, 8))
        loss(x, logits, y)
        t = loss.last_terms
        assert t.diagnostics["single_null"].shape == (10,)
        gaps[informative] = float((t.single - t.diagnostics["single_null"]).mean())
    assert gaps[True] > 0.1
    assert abs(gaps[False]) < 0.1

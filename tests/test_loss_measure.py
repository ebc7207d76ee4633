"""``GIBLoss.measure``, ``gib(z_code="soft")`` and the monitor's ``losses``: one quantity.

The loss, its measure and the exact soft-coded GIB are one computation; these tests hold them
together and to the exact hard-coded estimators in the limit.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import gibloss
from gibloss import GIBLoss

SURROGATES = {"soft_binning": "binning", "gaussian_copula": "gcmi"}


def _data(n: int = 300, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    y = (x[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(np.int64) + (x[:, 1] > 0.5)
    logits = np.column_stack([x[:, 0], -x[:, 0], x[:, 1]]) + rng.normal(size=(n, 3))
    return x, torch.tensor(logits), torch.tensor(y)


@pytest.mark.parametrize("pmi", ["ratio", "ppmi", "literal", "none"])
@pytest.mark.parametrize("surrogate", list(SURROGATES))
def test_measure_equals_the_forward_value_and_the_soft_gib(surrogate: str, pmi: str) -> None:
    x, logits, y = _data()
    for temperature in (2.0, 0.5, 0.05):
        loss = GIBLoss(estimator=surrogate, pmi=pmi, temperature=temperature, bins=5, weight=3.0)
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
            bins=5,
            pmi=pmi,
        )
        assert soft.complexity == pytest.approx(float(measured.complexity), abs=1e-12)
        assert soft.prediction == pytest.approx(float(measured.prediction), abs=1e-12)
        np.testing.assert_allclose(soft.single, measured.single.numpy(), atol=1e-12)
        assert soft.settings["z_code"] == "soft"


@pytest.mark.parametrize("q", ["cell", "z"])
@pytest.mark.parametrize("surrogate", list(SURROGATES))
def test_measure_with_hard_memberships_is_the_exact_argmax_coded_gib(surrogate: str, q) -> None:
    x, logits, y = _data(seed=3)
    hard = F.one_hot(logits.argmax(1), 3).double() * 1000.0  # memberships exactly 0 or 1
    for pmi in ("ratio", "none", "literal"):
        measured = GIBLoss(estimator=surrogate, bins=5, pmi=pmi, q=q).measure(x, hard, y)
        exact = gibloss.gib(
            x,
            logits.numpy(),
            y.numpy(),
            estimator=SURROGATES[surrogate],
            z_code="argmax",
            bins=5,
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
                GIBLoss(estimator="soft_binning", temperature=t, bins=5)
                .measure(x, logits, y)
                .complexity
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
    loss = GIBLoss(estimator=surrogate, bins=5, temperature=1.0, q=q)
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
        m = GIBLoss(estimator=surrogate, bins=6).measure(x, torch.tensor(out), torch.tensor(y))
        g = gibloss.gib(x, out, y, estimator=est, z_code="soft", bins=6)
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
        "gib": GIBLoss(bins=5),
        "soft": GIBLoss(estimator="soft_binning", bins=5, temperature=0.5),
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

"""GIBSpec: one validated description shared by gib(), gib_terms(), GIBLoss and the monitor."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gibloss import GIBLoss, InformationPlaneMonitor, gib
from gibloss.functional import gib_terms
from gibloss.spec import GIBSpec


def _batch(n: int = 300, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g, dtype=torch.float64)
    y = (x[:, 0] + x[:, 1] > 0).long()
    logits = torch.stack([-(x[:, 0] + x[:, 1]), x[:, 0] + x[:, 1]], 1) * 2
    return x, logits + 0.3 * torch.randn(n, 2, generator=g, dtype=torch.float64), y


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"beta": 0}, "`beta` must be a positive finite number"),
        ({"pmi": "log"}, "`pmi` must be one of"),
        ({"q": "cells"}, "`q` must be one of"),
        ({"z_code": "hard"}, "`z_code` must be one of"),
        ({"variant": "sum"}, "`variant` must be one of"),
        ({"temperature": float("nan")}, "`temperature` must be a positive finite number"),
        ({"estimator": "binning", "bins": 0}, "`bins` must be a positive integer"),
        ({"z_bins": 1.5}, "`z_bins` must be a positive integer"),
        ({"shrinkage": 2.0}, r"`shrinkage` must lie in \[0, 1\]"),
        ({"estimator": "kde"}, "z_code`='soft' needs an estimator with a differentiable"),
        ({"q": "pmi"}, "`q` must be 'cell' or 'z' with z_code='soft'"),
        ({"estimator": "kde", "z_code": "argmax", "bins": 5}, "`bins` sets the feature bins"),
        ({"estimator": "binning", "ridge": 1e-3}, "`ridge` sets the option of estimator="),
        ({"estimator": "knn"}, "`estimator` must be one of"),
        ({"task": "ranking"}, "task"),
    ],
)
def test_every_option_is_validated_before_any_data(options: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        GIBSpec(**options)


def test_resolved_defaults_follow_the_estimator_and_replace_rederives_them() -> None:
    binning = GIBSpec(estimator="binning")
    assert (binning.bins, binning.z_bins, binning.shrinkage) == (30, 30, None)
    assert GIBSpec(estimator="binning", bins=8).z_bins == 8  # features and Z binned alike
    gauss = binning.replace(estimator="gaussian_copula")
    assert (gauss.bins, gauss.z_bins, gauss.shrinkage, gauss.ridge) == (None, 30, 0.1, 1e-6)
    assert GIBSpec(q="pmi", z_code="argmax").pmi == "none"  # as gib(q="pmi") resolves it
    with pytest.raises(TypeError, match="no option"):
        binning.replace(colour="red")
    with pytest.raises(AttributeError):
        binning.beta = 2.0  # frozen
    assert binning == GIBSpec(estimator="binning", bins=30)  # equal by resolved value


def test_spec_and_keywords_together_are_an_error() -> None:
    x, logits, y = _batch()
    spec = GIBSpec()
    with pytest.raises(TypeError, match="not both"):
        GIBLoss(spec=spec, beta=2.0)
    with pytest.raises(TypeError, match="not both"):
        gib_terms(x, logits, y, spec, temperature=0.5)
    with pytest.raises(TypeError, match="not both"):
        gib(x, logits, y, spec=spec, beta=2.0)
    with pytest.raises(TypeError, match="unexpected keyword"):
        gib_terms(x, logits, y, temprature=0.5)
    with pytest.raises(ValueError, match="needs z_code='soft'"):
        GIBLoss(spec=GIBSpec(estimator="binning", z_code="argmax"))


@pytest.mark.parametrize("estimator", ["binning", "gaussian_copula"])
def test_a_spec_computes_what_its_keywords_compute(estimator: str) -> None:
    x, logits, y = _batch()
    kw = {"estimator": estimator, "beta": 2.0, "temperature": 0.7, "pmi": "ppmi"}
    spec = GIBSpec(**kw)
    by_spec = GIBLoss(spec=spec, memory=0.0)(x, logits, y)
    by_keywords = GIBLoss(**kw, memory=0.0)(x, logits, y)
    assert float(by_spec) == float(by_keywords)
    assert GIBLoss(spec=spec).beta == 2.0 and GIBLoss(spec=spec).spec is spec


def test_loss_monitor_and_gib_measure_one_quantity_from_one_spec() -> None:
    """The loss's spec given to gib() and to the monitor reads what loss.measure reads."""
    x, _, y = _batch(400, seed=1)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    model = model.double()
    loss = GIBLoss(estimator="binning", bins=6, temperature=0.5)
    with torch.no_grad():
        outputs = model(x)
    measured = float(loss.measure(x, outputs, y).complexity)
    exact = gib(x.numpy(), outputs.numpy(), y.numpy(), spec=loss.spec)
    assert exact.complexity == pytest.approx(measured, abs=1e-12)
    assert exact.settings["z_code"] == "soft" and exact.settings["bins"] == 6
    with InformationPlaneMonitor(model, (x, y), features=x.numpy(), gib_options=loss.spec) as mon:
        record = mon.measure(epoch=0)
    assert list(record["gib"]) == ["binning"]
    # the monitor's forward pass runs batched through hooks: equal to float64 rounding
    assert record["gib"]["binning"]["complexity"] == pytest.approx(measured, abs=1e-8)
    assert record["gib"]["binning"]["settings"]["temperature"] == 0.5


def test_a_hard_spec_in_the_monitor_keeps_the_null_and_the_argmax_reading() -> None:
    x, _, y = _batch(400, seed=2)
    model = torch.nn.Sequential(torch.nn.Linear(4, 2)).double()
    spec = GIBSpec(estimator="binning", bins=6, z_code="probs")
    with InformationPlaneMonitor(model, (x, y), features=x.numpy(), gib_options=spec) as mon:
        record = mon.measure(epoch=0)
    d = record["gib"]["binning"]
    with torch.no_grad():
        outputs = model(x).numpy()
    plain = gib(x.numpy(), outputs, y.numpy(), estimator="binning", bins=6, z_code="probs")
    assert d["complexity"] == pytest.approx(plain.complexity, abs=1e-12)  # the plug-in value
    assert 0.0 <= d["null"]["complexity"] < d["complexity"]
    argmax = gib(x.numpy(), outputs, y.numpy(), spec=spec.replace(z_code="argmax"))
    assert d["argmax"]["complexity"] == pytest.approx(argmax.complexity, abs=1e-12)
    assert np.isfinite(d["argmax"]["null"]["complexity"])

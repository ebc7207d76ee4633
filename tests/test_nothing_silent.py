"""Nothing silently wrong: each case gave a wrong number or an unclear crash before its fix.

Binary models with float labels, the memory as training state, the last batch of one row, the
bounds with the memory on, bad input named before any data is read, the float32 NaN of the
memory path.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import gibloss
from gibloss import GIBLoss, gib
from gibloss.functional import gib_terms

# --- 1. a binary classifier with one logit and float 0/1 labels -------------------------------


def _binary(n: int = 200, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=gen)
    y = x[:, 0] > 0
    logit = 3 * x[:, 0:1] + 0.5 * torch.randn(n, 1, generator=gen)
    return x, logit, y


@pytest.mark.parametrize("estimator", ["gaussian_copula", "binning"])
def test_float_01_labels_beside_one_logit_are_a_binary_classifier_in_the_loss(estimator) -> None:
    x, logit, y = _binary()
    with_float = GIBLoss(estimator=estimator)(x, logit, y.float())
    with_long = GIBLoss(estimator=estimator)(x, logit, y.long())
    assert float(with_float) == float(with_long)
    # the same values as the explicit two-class logits of a BCE model
    two = torch.cat([torch.zeros_like(logit), logit], dim=1)
    assert float(GIBLoss(estimator=estimator)(x, two, y.long())) == pytest.approx(
        float(with_long), abs=1e-12
    )
    # a regression is asked for explicitly, and differs (Z binned over its range)
    regression = GIBLoss(estimator=estimator, task="regression")(x, logit, y.float())
    assert float(regression) != pytest.approx(float(with_long), abs=1e-3)


@pytest.mark.parametrize("estimator", ["binning", "gaussian_copula"])
def test_float_01_labels_beside_one_logit_are_a_binary_classifier_in_gib(estimator) -> None:
    x, logit, y = _binary()
    a = gib(x.numpy(), logit.numpy(), y.float().numpy(), estimator=estimator)
    b = gib(x.numpy(), logit.numpy(), y.long().numpy(), estimator=estimator)
    assert a.complexity == b.complexity and a.prediction == b.prediction
    assert a.diagnostics["h_q"] == b.diagnostics["h_q"]
    q_float = gibloss.build_q(logit.numpy(), y.float().numpy())
    q_long = gibloss.build_q(logit.numpy(), y.long().numpy())
    np.testing.assert_array_equal(q_float.codes, q_long.codes)
    r = gib(x.numpy(), logit.numpy(), y.float().numpy(), estimator=estimator, task="regression")
    assert r.diagnostics["n_z_codes"] > 2  # Z binned as a regression output


def test_soft_q_reads_an_n_by_1_output_as_one_column() -> None:
    from gibloss.functional import soft_q

    x, logit, y = _binary()
    for task in ("auto", "classification"):
        a, b = soft_q(logit, y.float(), task=task), soft_q(logit[:, 0], y.float(), task=task)
        assert a.contingency.shape == b.contingency.shape == (2, 2)
    reg = soft_q(logit, torch.rand(200), task="regression", bins=7)
    assert reg.contingency.shape == (7, 7)


def test_task_classification_rejects_labels_other_than_01_and_regression_needs_one_column():
    x, logit, _ = _binary()
    with pytest.raises(ValueError, match="`y`.*task='classification'"):
        GIBLoss(task="classification")(x, logit, torch.rand(200))
    with pytest.raises(ValueError, match="task='regression' needs one output column"):
        GIBLoss(task="regression")(x, torch.randn(200, 3), torch.randint(0, 3, (200,)))
    with pytest.raises(ValueError, match="`task` must be one of"):
        GIBLoss(task="binary")


def test_monitor_reads_a_single_logit_with_float_labels_as_a_binary_classifier(tmp_path) -> None:
    x, _, y = _binary()
    model = torch.nn.Linear(3, 1)
    mon = gibloss.InformationPlaneMonitor(model, probe=(x, y.float()))
    rec = mon.measure(epoch=0)
    with torch.no_grad():
        out = model(x)[:, 0]
    expected = torch.nn.functional.binary_cross_entropy_with_logits(out, y.float())
    assert rec["loss"] == pytest.approx(float(expected), rel=1e-6)
    assert rec["accuracy"] == pytest.approx(float(((out > 0) == y).float().mean()))
    mon_long = gibloss.InformationPlaneMonitor(model, probe=(x, y.long()))
    rec_long = mon_long.measure(epoch=0)
    for est in rec["gib"]:
        assert rec["gib"][est]["complexity"] == rec_long["gib"][est]["complexity"]


def test_monitor_probe_with_float_labels_beside_logits_names_the_probe_labels() -> None:
    x, _, y = _binary()
    mon = gibloss.InformationPlaneMonitor(torch.nn.Linear(3, 2), probe=(x, y.float()))
    with pytest.raises(ValueError, match="probe labels `y` are float"):
        mon.measure(epoch=0)


# --- 2. the memory is training state -----------------------------------------------------------


def _batches(n_batches: int = 4, n: int = 32) -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(1)
    return [
        (torch.randn(n, 4, generator=gen), torch.randint(0, 3, (n,), generator=gen))
        for _ in range(n_batches)
    ]


def _memory(loss: GIBLoss) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in loss.state_dict().items()}


@pytest.mark.parametrize("context", ["no_grad", "inference_mode", "measure", "detached"])
def test_memory_changes_only_where_gradients_flow(context: str) -> None:
    model = torch.nn.Linear(4, 3)
    loss = GIBLoss()
    batches = _batches()
    for x, y in batches[:2]:
        loss(x, model(x), y)
    before = _memory(loss)
    assert before  # there is a memory to protect
    x, y = batches[2]
    if context == "no_grad":
        with torch.no_grad():
            loss(x, model(x), y)
    elif context == "inference_mode":
        with torch.inference_mode():
            loss(x, model(x), y)
    elif context == "measure":
        loss.measure(x, model(x), y)
    else:
        loss(x, model(x).detach(), y)
    after = _memory(loss)
    assert sorted(after) == sorted(before)
    assert all(torch.equal(after[k], before[k]) for k in before)
    loss(x, model(x), y)  # a training call does change it (so the check above can fail)
    assert not torch.equal(_memory(loss)["memory.s0"], before["memory.s0"])


# --- 3. the last batch of one row --------------------------------------------------------------


@pytest.mark.parametrize("estimator", ["gaussian_copula", "binning"])
def test_a_batch_of_one_row_contributes_zero_with_a_warning(estimator: str, monkeypatch) -> None:
    import gibloss.functional as F

    monkeypatch.setattr(F, "_warned_one_row", False)
    model = torch.nn.Linear(4, 3)
    loss = GIBLoss(estimator=estimator)
    x, y = _batches()[0]
    loss(x, model(x), y)
    before = _memory(loss)
    with pytest.warns(RuntimeWarning, match="one row"):
        value = loss(x[:1], model(x[:1]), y[:1])
    assert float(value.detach()) == 0.0
    value.backward()
    assert all(float(p.grad.abs().max()) == 0.0 for p in model.parameters())
    after = _memory(loss)
    assert all(torch.equal(after[k], before[k]) for k in before)
    with warnings.catch_warnings():  # warned once
        warnings.simplefilter("error")
        loss(x[:1], model(x[:1]), y[:1])


# --- 4. every term within [0, H(Q)] with the memory on; saturation reported -------------------


def test_terms_stay_within_h_q_with_the_memory_on() -> None:
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(4, 20))
    model = torch.nn.Linear(20, 4).double()
    loss = GIBLoss()
    for _ in range(30):
        y = rng.integers(0, 4, size=24)
        x = torch.tensor(centers[y] + rng.normal(size=(24, 20)))
        loss(x, model(x), torch.tensor(y))
        t = loss.last_terms
        h_q = float(t.h_q)
        for term in (t.whole.reshape(1), t.single, t.complement):
            assert float(term.min()) >= 0.0 and float(term.max()) <= h_q + 1e-9


def test_gaussian_copula_reports_complements_at_the_bound_as_saturated() -> None:
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(10, 50))
    y = rng.integers(0, 10, size=128)
    x = centers[y] + 2.0 * rng.normal(size=(128, 50))
    logits = torch.tensor(np.eye(10)[y] * 2.0 + rng.normal(size=(128, 10)))
    # batch only, ~13 rows per cell for 50 features: every complement at its H(Q) bound
    terms = gib_terms(x, logits, torch.tensor(y), memory_decay=0.0)
    torch.testing.assert_close(terms.complement, terms.h_q.expand(50), atol=1e-9, rtol=0)
    assert float(terms.diagnostics["saturated_complements"]) == 1.0
    # a well-populated estimate: none at the bound
    y = rng.integers(0, 2, size=2000)
    x = rng.normal(size=(2000, 3)) + y[:, None]
    logits = torch.tensor(np.stack([-x.sum(1), x.sum(1)], axis=1))
    terms = gib_terms(x, logits, torch.tensor(y))
    assert float(terms.diagnostics["saturated_complements"]) == 0.0


# --- 5. bad input named, options before data ----------------------------------------------------


def test_bad_input_names_what_the_caller_passed() -> None:
    with pytest.raises(ValueError, match="`bins` must be a positive integer, got 0"):
        GIBLoss(estimator="gaussian_copula", bins=0)
    x = torch.zeros(10, 0)
    z = np.random.default_rng(0).normal(size=(10, 2))
    for estimator in ("gaussian_copula", "binning"):
        with pytest.raises(ValueError, match="`x` must have at least one column"):
            GIBLoss(estimator=estimator)(x, torch.randn(10, 2), torch.arange(10) % 2)
        with pytest.raises(ValueError, match="`x` must have at least one column"):
            gib(x.numpy(), z, np.arange(10) % 2, estimator=estimator)
    # options are checked before the data (here z has one row too few)
    xs, zs, ys = np.zeros((10, 2)), z[:9], np.arange(10) % 2
    with pytest.raises(ValueError, match="`pmi` must be one of"):
        gib(xs, zs, ys, pmi="bogus")
    with pytest.raises(ValueError, match="`q` must be one of"):
        gib(xs, zs, ys, q="bogus")
    with pytest.raises(ValueError, match="`task` must be one of"):
        gib(xs, zs, ys, task="bogus")
    with pytest.raises(TypeError, match="reducer instance, got the class PCAReducer"):
        GIBLoss(reducer=gibloss.PCAReducer)


def test_probabilities_passed_as_logits_warn() -> None:
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(50, 3, generator=gen), torch.randint(0, 3, (50,), generator=gen)
    probs = torch.softmax(torch.randn(50, 3, generator=gen), dim=1)
    with pytest.warns(UserWarning, match="look like probabilities"):
        GIBLoss()(x, probs, y)
    with pytest.warns(UserWarning, match="look like probabilities"):
        gib(x.numpy(), probs.numpy(), y.numpy())
    with warnings.catch_warnings():  # logits do not
        warnings.simplefilter("error", UserWarning)
        GIBLoss()(x, torch.log(probs), y)


# --- 6. the float32 NaN of the memory path -----------------------------------------------------


def test_float32_memory_path_is_finite_at_low_temperature() -> None:
    """5 rows, labels [2, 1, 1, 0, 0], pmi='literal', temperature 0.01, float32: seeds 90 and
    141 gave a NaN loss and NaN gradients (the covariance from float32 sums cancelled)."""
    bad = []
    for seed in range(200):
        torch.manual_seed(seed)
        lin = torch.nn.Linear(2, 5)
        x, y = torch.rand(5, 2), torch.tensor([2, 1, 1, 0, 0])
        loss = GIBLoss(pmi="literal", temperature=0.01, dtype=torch.float32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            value = loss(x, lin(x), y)
        value.backward()
        if not (torch.isfinite(value) and torch.isfinite(lin.weight.grad).all()):
            bad.append(seed)
    assert bad == []

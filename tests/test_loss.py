"""GIBLoss and gibloss.functional: agreement with the exact estimators, gradients, robustness."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import (
    bins_kw,
    three_class_batch,
)
from hypothesis import given
from hypothesis import strategies as st

import gibloss
from gibloss import GIBLoss
from gibloss.functional import gib_complexity, gib_terms, soft_q


def _data(n: int = 400, seed: int = 0) -> tuple:
    return three_class_batch(n, seed)


@pytest.mark.parametrize("pmi", ["ratio", "ppmi", "literal", "none"])
def test_soft_binning_converges_to_exact_binning_as_temperature_falls(pmi: str) -> None:
    x, logits, y = _data()
    exact = gibloss.gib(
        x, logits.numpy(), y.numpy(), estimator="binning", z_code="argmax", bins=5, pmi=pmi
    )
    errors = []
    for tau in (1.0, 0.3, 0.1, 0.03, 0.01, 0.003):
        soft = gib_terms(x, logits, y, estimator="binning", temperature=tau, bins=5, pmi=pmi)
        errors.append(abs(float(soft.complexity) - exact.complexity) / exact.complexity)
    assert all(b <= a + 1e-12 for a, b in zip(errors, errors[1:], strict=False)), errors
    assert errors[-1] < 0.01
    assert errors[0] > errors[-1]


def test_soft_binning_regression_converges() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 3))
    target = x[:, 0] + 0.3 * rng.normal(size=300)
    out = torch.tensor(x[:, 0] + 0.2 * rng.normal(size=300))
    exact = gibloss.gib(x, out.numpy(), target, estimator="binning", bins=6)
    soft = gib_terms(
        x, out, torch.tensor(target), estimator="binning", bins=6, temperature=0.001
    )
    assert float(soft.complexity) == pytest.approx(exact.complexity, rel=0.01)


@pytest.mark.parametrize("pmi", ["ratio", "ppmi", "literal", "none"])
def test_gaussian_copula_equals_exact_gcmi_with_hard_memberships(pmi: str) -> None:
    x, logits, y = _data(seed=3)
    exact = gibloss.gib(x, logits.numpy(), y.numpy(), estimator="gaussian_copula", pmi=pmi)
    hard = F.one_hot(logits.argmax(1), 3).double() * 1000.0  # hard memberships at temperature 1
    soft = gib_terms(x, hard, y, estimator="gaussian_copula", pmi=pmi)
    assert float(soft.complexity) == pytest.approx(exact.complexity, abs=1e-6)
    np.testing.assert_allclose(soft.single.numpy(), exact.single, atol=1e-6)
    np.testing.assert_allclose(soft.complement.numpy(), exact.complement, atol=1e-6)
    assert float(soft.whole) == pytest.approx(exact.whole, abs=1e-6)


def test_prediction_term_equals_exact_when_hard() -> None:
    x, logits, y = _data(seed=4)
    exact = gibloss.gib(x, logits.numpy(), y.numpy(), estimator="gaussian_copula")
    soft = gib_terms(x, F.one_hot(logits.argmax(1), 3).double() * 1000.0, y)
    assert float(soft.prediction) == pytest.approx(exact.prediction, abs=1e-9)


@pytest.mark.parametrize("estimator", ["gaussian_copula", "binning"])
def test_gradcheck_float64(estimator: str) -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(24, 3))
    y = torch.tensor(rng.integers(0, 3, size=24))
    logits = torch.tensor(rng.normal(size=(24, 3)), requires_grad=True)

    def f(z: torch.Tensor) -> torch.Tensor:
        return gib_complexity(x, z, y, estimator=estimator, **bins_kw(estimator, 4))

    assert torch.autograd.gradcheck(f, (logits,), eps=1e-6, atol=1e-5)


def test_gradcheck_of_the_memory_path_and_its_written_backward() -> None:
    """The Gaussian entropies' log-determinant and precision diagonal have a hand-written
    backward (two matrix products); checked alone and through the memory path."""
    from gibloss.estimators._gaussian import LogdetPrecisionDiagonal

    g = torch.Generator().manual_seed(0)
    a = torch.randn(4, 5, 5, generator=g, dtype=torch.float64)
    spd = (a @ a.mT + 3.0 * torch.eye(5, dtype=torch.float64)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda s: LogdetPrecisionDiagonal.apply((s + s.mT) / 2), (spd,))
    rng = np.random.default_rng(7)
    x = rng.normal(size=(60, 3))
    y = torch.tensor(rng.integers(0, 2, size=60))
    logits = torch.tensor(rng.normal(size=(60, 2)), requires_grad=True)

    def f(z: torch.Tensor) -> torch.Tensor:
        return gib_terms(x, z, y, memory_decay=0.9, null=False).complexity

    assert torch.autograd.gradcheck(f, (logits,), eps=1e-6, atol=1e-5)


def test_gradcheck_regression() -> None:
    rng = np.random.default_rng(6)
    x = rng.normal(size=(30, 2))
    target = torch.tensor(rng.normal(size=30))
    out = torch.tensor(rng.normal(size=30), requires_grad=True)
    f = lambda z: gib_complexity(x, z, target, estimator="binning", bins=4)  # noqa: E731
    assert torch.autograd.gradcheck(f, (out,), eps=1e-6, atol=1e-5)


def test_gradient_flows_through_outputs_only() -> None:
    x = torch.randn(40, 3, requires_grad=True)
    logits = torch.randn(40, 2, requires_grad=True)
    y = torch.randint(0, 2, (40,))
    GIBLoss()(x, logits, y).backward()
    assert x.grad is None
    assert logits.grad is not None and torch.isfinite(logits.grad).all()


def test_loss_value_terms_variants_and_per_feature_shares() -> None:
    x, logits, y = _data(n=120, seed=7)
    loss = GIBLoss(weight=0.5, beta=2.0)
    value = loss(torch.tensor(x), logits.float(), y)
    t = loss.last_terms
    assert value.dtype == torch.float32 and value.ndim == 0
    assert float(value) == pytest.approx(
        0.5 * float(t.single.sum() + t.complement.sum()) / (2 * 2.0 * 4), rel=1e-5
    )
    assert t.per_feature.shape == (4,)
    assert float(t.per_feature.sum()) == pytest.approx(float(t.complexity), rel=1e-12)
    svw = GIBLoss(variant="sum_vs_whole")(x, logits, y)
    assert float(svw) == pytest.approx(float(t.single.sum()), rel=1e-5)  # singles don't see beta


def test_deprecated_spellings_warn_and_keep_their_meaning() -> None:
    x, logits, y = _data(n=120, seed=7)
    plain = GIBLoss()(x, logits, y)
    with pytest.warns(DeprecationWarning, match="reduction='none'"):
        per = GIBLoss(reduction="none")(x, logits, y)
    assert per.shape == (4,) and float(per.mean()) == pytest.approx(float(plain), rel=1e-9)
    with pytest.warns(DeprecationWarning, match="variant='sum_vs_whole'"):
        old = GIBLoss(reduction="sum_vs_whole")(x, logits, y)
    assert float(old) == float(GIBLoss(variant="sum_vs_whole")(x, logits, y))
    with pytest.warns(DeprecationWarning, match="estimator='gaussian_copula'"):
        assert GIBLoss(estimator="gcmi").estimator == "gaussian_copula"
    with pytest.warns(DeprecationWarning, match="estimator='binning'"):
        assert GIBLoss(estimator="soft_binning").estimator == "binning"
    with pytest.warns(DeprecationWarning, match="z_bins=7"):
        assert GIBLoss(bins=7).z_bins == 7  # 0.1's `bins` of the Gaussian copula binned Z
    with pytest.warns(DeprecationWarning, match="by position"):
        assert GIBLoss("gaussian_copula", 1.0, 2.0).beta == 2.0
    binning = GIBLoss(estimator="binning", bins=7)
    assert (binning.bins, binning.z_bins) == (7, 7)
    assert GIBLoss(estimator="binning", bins=7, z_bins=3).z_bins == 3
    with pytest.warns(DeprecationWarning, match="estimator='gaussian_copula'"):
        via_old = gib_terms(x, logits, y, estimator="gcmi", null=False).complexity
    assert float(via_old) == float(gib_terms(x, logits, y, null=False).complexity)


def test_reducer_applied_to_raw_inputs() -> None:
    imgs = torch.randn(64, 1, 4, 4)
    red = gibloss.PCAReducer(n_components=5).fit(imgs)
    logits = torch.randn(64, 2, requires_grad=True)
    y = torch.randint(0, 2, (64,))
    a = GIBLoss(reducer=red)(imgs, logits, y)
    b = GIBLoss()(red.transform(imgs), logits, y)
    assert float(a.detach()) == pytest.approx(float(b.detach()), rel=1e-12)


@pytest.mark.parametrize(
    "kwargs, call, exc, match",
    [
        ({"estimator": "kde"}, None, ValueError, "estimator"),
        ({"weight": -1.0}, None, ValueError, "weight"),
        ({"bogus": 1}, None, TypeError, "bogus"),
        (
            {},
            lambda l: l(torch.randn(5, 2), torch.randn(4, 2), torch.zeros(4).long()),
            ValueError,
            "same number of samples",
        ),
        (
            {},
            lambda l: l(torch.randn(4, 2), torch.randn(4, 2), torch.rand(4)),
            TypeError,
            "integer class labels",
        ),
        (
            {},
            lambda l: l(torch.randn(4, 2), torch.randn(4, 2), torch.tensor([0, 1, 2, 1])),
            ValueError,
            r"labels must lie in \[0, 2\)",
        ),
        (
            {},
            lambda l: l(torch.randn(4, 2), torch.full((4, 2), float("nan")), torch.zeros(4).long()),
            ValueError,
            "NaN",
        ),
        (
            {},
            lambda l: l(torch.randn(4, 2), torch.zeros(4, 2).long(), torch.zeros(4).long()),
            TypeError,
            "floating point",
        ),
        (
            {},
            lambda l: l(torch.randn(0, 2), torch.randn(0, 2), torch.zeros(0).long()),
            ValueError,
            "at least 1",
        ),
        (
            {"temperature": 0.0},
            lambda l: l(torch.randn(4, 2), torch.randn(4, 2), torch.zeros(4).long()),
            ValueError,
            "temperature",
        ),
        (
            {"reduction": "sum"},
            lambda l: l(torch.randn(4, 2), torch.randn(4, 2), torch.zeros(4).long()),
            ValueError,
            "reduction",
        ),
    ],
)
def test_bad_input_named(kwargs, call, exc, match) -> None:
    with pytest.raises(exc, match=match):
        loss = GIBLoss(**kwargs)
        call(loss)


def test_soft_q_hard_limit_matches_pmi_weights() -> None:
    y = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    pred = torch.tensor([0, 0, 0, 1, 1, 1, 1, 0])
    logits = F.one_hot(pred, 2).double() * 1e4
    for mode in ("ratio", "ppmi", "literal", "none"):
        q = soft_q(logits, y, pmi=mode)
        w = gibloss.pmi_weights(pred.numpy(), y.numpy(), mode=mode)
        np.testing.assert_allclose(q.mass.sum(dim=1).numpy(), w, atol=1e-12)


# --- finite values and gradients on degenerate batches (hypothesis) -----------------------------


@st.composite
def degenerate_batches(draw):
    n = draw(st.integers(2, 24))
    n_feat = draw(st.integers(1, 30))  # n < N is allowed
    k = draw(st.integers(2, 4))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    kind = draw(st.sampled_from(["normal", "constant", "tied", "mixed"]))
    x = rng.normal(size=(n, n_feat))
    if kind == "constant":
        x[:] = 1.0
    elif kind == "tied":
        x = np.round(x)
    elif kind == "mixed":
        x[:, 0] = 3.0
        x[:, -1] = np.round(x[:, -1])
    labels = draw(st.sampled_from(["random", "single", "all_wrong"]))
    if labels == "single":
        y = np.zeros(n, dtype=np.int64)
    else:
        y = rng.integers(0, k, size=n)
    scale = draw(st.sampled_from([0.0, 1.0, 30.0]))
    logits = rng.normal(size=(n, k)) * scale
    if labels == "all_wrong":
        logits = np.zeros((n, k))
        logits[np.arange(n), (y + 1) % k] = 20.0
    estimator = draw(st.sampled_from(["gaussian_copula", "binning"]))
    pmi = draw(st.sampled_from(["ratio", "ppmi", "literal", "none"]))
    half = draw(st.sampled_from([None, torch.float16, torch.bfloat16]))
    return x, logits, y, estimator, pmi, half


@given(degenerate_batches())
def test_finite_loss_and_gradients_on_degenerate_batches(batch) -> None:
    x, logits_np, y, estimator, pmi, half = batch
    logits = torch.tensor(logits_np, dtype=torch.float32, requires_grad=True)
    loss = GIBLoss(estimator=estimator, pmi=pmi, **bins_kw(estimator, 5))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if half is None:
            value = loss(x, logits, torch.tensor(y))
        else:
            with torch.autocast("cpu", dtype=half):
                z = logits.to(half) * 1.0
                value = loss(x, z, torch.tensor(y))
    value.backward()
    assert torch.isfinite(value)
    assert logits.grad is not None and torch.isfinite(logits.grad).all()


def test_low_rank_shrunk_path_equals_full_path() -> None:
    from gibloss.estimators._gaussian import (
        gaussian_entropies,
        shrunk_entropies_from_rows,
        weighted_covariances,
    )

    gen = torch.Generator().manual_seed(0)
    for r, d in [(5, 10), (13, 50), (51, 50), (1, 4)]:
        g = torch.randn(r, d, generator=gen, dtype=torch.float64)
        w = torch.rand(r, 4, generator=gen, dtype=torch.float64)
        if r > 1:
            w[0, 1] = 0.0  # zero-weight rows are allowed
        full = gaussian_entropies(*weighted_covariances(g, w))
        assert bool(full[3].all())  # every covariance was shrunk
        low = shrunk_entropies_from_rows(g, w)
        for a, b in zip(full[:3], low, strict=True):
            torch.testing.assert_close(a, b, atol=1e-10, rtol=0)
        # padding with zero-weight rows changes nothing
        pad = shrunk_entropies_from_rows(
            torch.cat([g, torch.randn(2, d, generator=gen, dtype=torch.float64)]),
            torch.cat([w, torch.zeros(2, 4, dtype=torch.float64)]),
        )
        for a, b in zip(low, pad, strict=True):
            torch.testing.assert_close(a, b, atol=1e-10, rtol=0)


@pytest.mark.parametrize("estimator", ["gaussian_copula", "binning"])
def test_finite_gradients_with_exactly_hard_memberships(estimator: str) -> None:
    x, logits, y = _data(n=60, seed=9)
    hard = (F.one_hot(logits.argmax(1), 3).double() * 1000.0).requires_grad_(True)
    gib_complexity(x, hard, y, estimator=estimator).backward()
    assert torch.isfinite(hard.grad).all()


def test_memory_is_state_dict_so_a_resumed_loss_continues_exactly(tmp_path) -> None:
    """A checkpoint of the loss (state_dict) carries its remembered cell sums."""
    from safetensors.torch import load_file, save_file

    torch.manual_seed(0)
    x, y = torch.randn(64, 5), torch.randint(0, 3, (64,))
    # outputs that require grad, as a model's do: only such calls update the memory
    batches = [
        (x[i : i + 16], torch.randn(16, 3, requires_grad=True), y[i : i + 16])
        for i in range(0, 64, 16)
    ]
    full = GIBLoss()
    assert full.state_dict() == {}  # no memory yet: nothing to save, old checkpoints still load
    for b in batches[:2]:
        full(*b)
    state = full.state_dict()
    assert sorted(state) == [f"memory.{k}" for k in ("r2", "s0", "s1", "s2", "w2")]
    save_file(state, tmp_path / "loss.safetensors")  # plain tensors: safetensors can hold them
    resumed = GIBLoss()
    resumed.load_state_dict(load_file(tmp_path / "loss.safetensors"))
    fresh = GIBLoss()  # what a resume without the memory would compute
    for b in batches[2:]:
        a, r, f = full(*b), resumed(*b), fresh(*b)
        assert torch.equal(a, r)
    assert not torch.equal(a, f)  # the memory matters, so the check above can fail
    # inside a model, an older state dict (no memory) still loads strictly
    model = torch.nn.ModuleDict({"head": torch.nn.Linear(2, 2), "gib": GIBLoss()})
    model.load_state_dict({k: v for k, v in model.state_dict().items()})
    model["gib"].load_state_dict(state)
    assert "gib.memory.s0" in model.state_dict()
    with pytest.raises(RuntimeError, match="needs all of"):
        resumed.load_state_dict({"memory.s0": state["memory.s0"]})

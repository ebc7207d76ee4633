"""The loss stays on the device: no numpy, a constant number of host synchronisations, compiles.

On a CPU there is no device-to-host copy to see, so the host synchronisations are counted where
they happen on any device: every op that reads a value back to Python (``item``, ``bool``,
``int``, ``float``: ``aten._local_scalar_dense``), every op whose output size depends on the
data (``nonzero``, boolean indexing, ``unique``, ``masked_select``) and every ``Tensor.tolist``.
``Tensor.numpy`` fails outright.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import gibloss

_SYNC_OPS = {
    "_local_scalar_dense",
    "nonzero",
    "_unique2",
    "unique_dim",
    "unique_consecutive",
    "masked_select",
}


class _SyncCounter(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.counts: collections.Counter[str] = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        name = func.overloadpacket.__name__
        if name in _SYNC_OPS:
            self.counts[name] += 1
        elif name in ("index", "index_put", "index_put_") and any(
            isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in args[1]
        ):
            self.counts["boolean_index"] += 1  # a data-dependent size: nonzero on a GPU
        return func(*args, **(kwargs or {}))


@contextmanager
def _counted(monkeypatch: pytest.MonkeyPatch) -> Iterator[collections.Counter[str]]:
    """Count host synchronisations; any ``Tensor.numpy`` call raises."""
    counts: collections.Counter[str] = collections.Counter()
    tolist = torch.Tensor.tolist

    def counted_tolist(self: torch.Tensor):  # type: ignore[no-untyped-def]
        counts["tolist"] += 1
        return tolist(self)

    def no_numpy(self: torch.Tensor, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("Tensor.numpy() on the loss path")

    with monkeypatch.context() as m:
        m.setattr(torch.Tensor, "tolist", counted_tolist)
        m.setattr(torch.Tensor, "numpy", no_numpy)
        with _SyncCounter() as mode:
            yield counts
        counts.update(mode.counts)


def _syncs_of_a_step(
    monkeypatch: pytest.MonkeyPatch, n: int, n_feat: int, **options
) -> collections.Counter[str]:
    torch.manual_seed(0)
    x = torch.randn(n, n_feat)
    y = torch.randint(0, 3, (n,))
    model = torch.nn.Linear(n_feat, 3)
    loss = gibloss.GIBLoss(**options)
    loss(x, model(x), y).backward()  # a first call fills the memory (when there is one)
    with _counted(monkeypatch) as counts:
        loss(x, model(x), y).backward()
    return counts


@pytest.mark.parametrize(
    "options",
    [
        {"estimator": "binning"},
        {"estimator": "gaussian_copula", "memory": 0.0},
        {"estimator": "gaussian_copula"},  # with the default memory
    ],
    ids=["binning", "gaussian_copula", "gaussian_copula-memory"],
)
def test_forward_and_backward_make_no_numpy_call_and_a_constant_number_of_syncs(
    monkeypatch: pytest.MonkeyPatch, options: dict
) -> None:
    fast = {**options, "validate": False}
    small = _syncs_of_a_step(monkeypatch, 64, 3, **fast)
    large = _syncs_of_a_step(monkeypatch, 1024, 24, **fast)
    # independent of the batch size and of the number of features
    assert small == large
    assert sum(small.values()) <= 10, small
    checked = _syncs_of_a_step(monkeypatch, 1024, 24, **options)  # validate=True
    assert sum(large.values()) < sum(checked.values()) <= sum(large.values()) + 4, checked


def test_the_guard_sees_a_numpy_call_and_a_sync(monkeypatch: pytest.MonkeyPatch) -> None:
    with _counted(monkeypatch) as counts:
        t = torch.arange(4.0)
        assert float(t.sum()) == 6.0
        assert t[t > 1].shape == (2,)
    assert counts["_local_scalar_dense"] >= 1 and counts["boolean_index"] == 1
    with _counted(monkeypatch), pytest.raises(AssertionError, match="numpy"):
        torch.arange(3).numpy()


def test_pca_reducer_transforms_a_tensor_in_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    imgs = torch.randn(80, 1, 5, 5)
    red = gibloss.PCAReducer(4).fit(imgs)
    expected = red.transform(imgs.numpy())
    with _counted(monkeypatch) as counts:
        got = red.transform(imgs)
    assert sum(counts.values()) == 0
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, torch.as_tensor(expected, dtype=torch.float32))


def test_a_compiled_training_step_with_gibloss_and_a_reducer_matches_eager() -> None:
    torch.manual_seed(0)
    imgs = torch.randn(96, 1, 6, 6)
    y = torch.randint(0, 3, (96,))
    red = gibloss.PCAReducer(5).fit(imgs)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(36, 3))
    gib = gibloss.GIBLoss(weight=0.5, reducer=red, validate=False, memory=0.0)

    def step(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        logits = model(xb)
        loss = torch.nn.functional.cross_entropy(logits, yb) + gib(xb, logits, yb)
        loss.backward()
        return loss.detach()

    eager = step(imgs, y)
    grad = model[1].weight.grad.clone()
    model.zero_grad()
    torch._dynamo.reset()
    # aot_eager traces forward and backward as inductor does, without its minute-long codegen
    compiled = torch.compile(step, backend="aot_eager")(imgs, y)
    torch.testing.assert_close(compiled, eager)
    torch.testing.assert_close(model[1].weight.grad, grad)

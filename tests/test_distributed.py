"""Two CPU processes under `accelerate launch` give the single-process loss and gradients."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import gibloss
from gibloss import GIBLoss

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import bins_kw, run_launched, two_process_launcher  # noqa: E402
from ddp_reference import make_batch, make_model, memory_steps  # noqa: E402

HERE = Path(__file__).resolve().parent


def test_two_process_gib_loss_and_gradients_match_single_process(tmp_path: Path) -> None:
    out = tmp_path / "ddp.pt"
    cmd = two_process_launcher() + [
        str(HERE / "ddp_worker.py"),
        "--out",
        str(out),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = run_launched(cmd, [out, out.with_suffix(".jsonl"), tmp_path / "ddp.activations"],
                        timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "deprecated" not in proc.stderr  # no deprecated collective on the gathering path
    results = torch.load(out)
    assert results["world_size"] == 2
    # monitor: main process measured twice, the other never; one writer
    assert results["measured_per_rank"] == [2, 0]
    kinds = [r["kind"] for r in gibloss.read_records(out.with_suffix(".jsonl"))]
    assert kinds.count("header") == 1 and kinds.count("measurement") == 2
    for estimator in ("gaussian_copula", "binning"):
        model = make_model()
        x, feats, y = make_batch()
        logits = model(x)
        gib = GIBLoss(estimator=estimator, weight=1.0, **bins_kw(estimator, 4))
        gib_value = gib(feats, logits, y)
        (F.cross_entropy(logits, y) + gib_value).backward()
        got = results[estimator]
        assert got["n_samples"] == x.shape[0]  # every process saw the global batch
        assert float(got["gib"]) == pytest.approx(float(gib_value.detach()), abs=1e-6)
        for g_ddp, p in zip(got["grads"], model.parameters(), strict=True):
            torch.testing.assert_close(g_ddp, p.grad, atol=1e-6, rtol=0)
    # successive batches with the memory: the same values as one process on the global batches
    model = make_model()
    expected = memory_steps(model, GIBLoss(estimator="gaussian_copula", z_bins=4), slice(None))
    assert len(results["memory_values"]) == 3
    for got, want in zip(results["memory_values"], expected, strict=True):
        assert float(got) == pytest.approx(float(want), abs=1e-6)
    assert float(expected[0]) != pytest.approx(float(expected[2]), abs=1e-6)


def test_only_a_rendezvous_failure_is_retried() -> None:
    from conftest import is_rendezvous_failure

    assert is_rendezvous_failure("torch.distributed.DistNetworkError: ... EADDRINUSE")
    assert not is_rendezvous_failure("Traceback ...\nAssertionError: gradients differ")
    assert not is_rendezvous_failure("Signals.SIGSEGV: 11")

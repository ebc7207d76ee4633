"""Worker for test_distributed.py: one DDP step with GIBLoss under `accelerate launch`.

Each process takes its shard of a fixed global batch, computes cross-entropy on the shard plus
GIBLoss (which gathers the global batch), and calls backward through Accelerate (DDP averages the
parameter gradients). Rank 0 saves the GIB value and the averaged gradients for the test to
compare with one process on the concatenated batch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import Accelerator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ddp_reference import N_TOTAL, make_batch, make_model, memory_steps  # noqa: E402

from gibloss import GIBLoss  # noqa: E402


def bins_kw(estimator: str, n: int) -> dict[str, int]:
    return {"bins": n} if estimator == "binning" else {"z_bins": n}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    accelerator = Accelerator(cpu=True)
    rank, world = accelerator.process_index, accelerator.num_processes
    results = {"world_size": world}
    for estimator in ("gaussian_copula", "binning"):
        model = accelerator.prepare(make_model())
        x, feats, y = make_batch()
        shard = slice(rank * N_TOTAL // world, (rank + 1) * N_TOTAL // world)
        logits = model(x[shard])
        gib = GIBLoss(estimator=estimator, weight=1.0, **bins_kw(estimator, 4))
        gib_value = gib(feats[shard], logits, y[shard])
        loss = F.cross_entropy(logits, y[shard]) + gib_value
        accelerator.backward(loss)
        grads = [p.grad.detach().clone() for p in model.parameters()]
        results[estimator] = {
            "gib": gib_value.detach(),
            "grads": grads,
            "n_samples": gib.last_terms.n_samples,
        }
    # the Gaussian copula's memory of cell sums stays identical across processes
    gib = GIBLoss(estimator="gaussian_copula", z_bins=4)
    shard = slice(rank * N_TOTAL // world, (rank + 1) * N_TOTAL // world)
    results["memory_values"] = memory_steps(model, gib, shard)
    # The monitor computes on the main process only; every process calls measure() and stays in
    # step (a deadlock or a second writer would fail the test).
    from gibloss.integrations.accelerate import make_monitor

    x, feats, y = make_batch()
    monitor = make_monitor(
        accelerator, model, (x, y), features=feats, path=args.out.with_suffix(".jsonl"), bins=4
    )
    results["measured"] = [monitor.measure(step=s) is not None for s in range(2)]
    monitor.close()
    gathered = accelerator.gather(torch.tensor([sum(results["measured"])]))
    results["measured_per_rank"] = gathered.tolist()
    if accelerator.is_main_process:
        torch.save(results, args.out)
    accelerator.wait_for_everyone()


if __name__ == "__main__":
    main()

"""Cost of GIBLoss as a fraction of one ResNet-20 training step, measured in one process.

Batch 128 of 3×32×32 images, 10 classes, N = 50 features per sample (KPCA-50 features are
precomputed once and served beside each batch, so they cost nothing here). For each
surrogate the script times ``GIBLoss`` forward + backward on the batch's logits, and a full
training step (forward, cross-entropy, backward, SGD update) without and with the loss, then
prints the ratios. Target: GIBLoss forward + backward <= 5 % of a step. On a GPU it also counts
the synchronising CUDA calls of one forward + backward (``torch.cuda.set_sync_debug_mode``).

It first prints, for the default loss and its variants, the aten calls of one forward +
backward (each is at least one kernel launch on a GPU, where a small loss is latency-bound) at
N = 50 and N = 128, and the peak tensor memory of the loss (the storages it holds at once,
``evaluation/_counting.py``); the issue's targets: at most 150 aten calls, the default memory
path at most 1.5x the batch-only loss's time.

Usage::

    python evaluation/bench_loss.py [--repeats 10] [--batch 128] [--features 50] [--device cuda]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from gibloss import GIBLoss
from gibloss._recipes.models import cifar_resnet

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _counting import aten_calls, peak_tensor_bytes  # noqa: E402

#: (label, GIBLoss options) of the cost table
VARIANTS = (
    ("GIBLoss() (Gaussian copula, memory 0.98)", {}),
    ("validate=False", {"validate": False}),
    ("null=False, validate=False", {"null": False, "validate": False}),
    ("memory=0", {"memory": 0.0}),
    ("memory=0, null=False, validate=False", {"memory": 0.0, "null": False, "validate": False}),
    ('estimator="binning"', {"estimator": "binning"}),
)


def cost_table(dev: torch.device, batch: int, repeats: int, classes: int = 10) -> None:
    """Aten calls, time and peak memory of one forward + backward of each variant."""
    print(f"\nforward + backward of the loss alone, batch {batch}, {classes} classes "
          f"(logits given), median of {repeats}")
    print("| configuration | aten calls, N = 50 | aten calls, N = 128 | time, N = 50 "
          "| peak tensor memory, N = 128 | top ops (N = 50) |")
    print("|---|---|---|---|---|---|")
    gen = torch.Generator().manual_seed(0)
    y = torch.randint(0, classes, (batch,), generator=gen).to(dev)
    base = torch.randn(batch, classes, generator=gen).to(dev)
    times = {}
    for label, options in VARIANTS:
        cells = []
        for n_feat in (50, 128):
            feats = torch.randn(batch, n_feat, generator=gen).to(dev)
            loss = GIBLoss(**options)

            def run(loss: GIBLoss = loss, feats: torch.Tensor = feats) -> None:
                z = base.clone().requires_grad_(True)
                loss(feats, z, y).backward()
                if dev.type == "cuda":
                    torch.cuda.synchronize()

            run()  # fills the memory and warms up
            run()
            count, top = aten_calls(run)
            cells.append((count, top, run))
        t50 = median_time(cells[0][2], repeats)
        times[label] = t50
        peak = peak_tensor_bytes(cells[1][2])
        top = ", ".join(f"{k} {v}" for k, v in cells[0][1][:5])
        print(f"| {label} | {cells[0][0]} | {cells[1][0]} | {t50 * 1e3:.1f} ms "
              f"| {peak / 2**20:.1f} MiB | {top} |")
    default = times[VARIANTS[0][0]]
    batch_only = times["memory=0"]
    print(f"the default memory path costs {default / batch_only:.2f}x the batch-only loss "
          "(target: at most 1.5x)")


def median_time(fn: Callable[[], object], repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    dev = torch.device(args.device)
    torch.manual_seed(0)
    model = cifar_resnet(20).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    images = torch.randn(args.batch, 3, 32, 32, device=dev)
    labels = torch.randint(0, 10, (args.batch,), device=dev)
    feats = torch.randn(args.batch, args.features, device=dev)

    def step(gib: GIBLoss | None) -> Callable[[], None]:
        def run() -> None:
            logits = model(images)
            loss = F.cross_entropy(logits, labels)
            if gib is not None:
                loss = loss + gib(feats, logits, labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if dev.type == "cuda":
                torch.cuda.synchronize()

        return run

    def cuda_syncs(gib: GIBLoss) -> str:
        """Synchronising CUDA calls in one forward + backward (torch's sync debug mode)."""
        if dev.type != "cuda":
            return ""
        with torch.no_grad():
            base = model(images)

        def run() -> None:
            logits = base.clone().requires_grad_(True)
            gib(feats, logits, labels).backward()

        run()  # the first call fills the memory
        torch.cuda.synchronize()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                run()
            finally:
                torch.cuda.set_sync_debug_mode("default")
        n_sync = sum("synchroniz" in str(w.message) for w in caught)
        return f"  {n_sync} CUDA synchronisations"

    def loss_only(gib: GIBLoss) -> Callable[[], None]:
        with torch.no_grad():
            base = model(images)

        def run() -> None:
            logits = base.clone().requires_grad_(True)
            gib(feats, logits, labels).backward()
            if dev.type == "cuda":
                torch.cuda.synchronize()

        return run

    print(f"device {dev}, torch threads {torch.get_num_threads()}")
    cost_table(dev, args.batch, args.repeats)
    print(
        f"\nResNet-20 steps: device {dev}, batch {args.batch}, N = {args.features} features, "
        f"torch threads {torch.get_num_threads()}, median of {args.repeats}"
    )
    t_step = median_time(step(None), args.repeats)
    print(f"{'ResNet-20 training step':38s} {t_step * 1e3:9.1f} ms")
    for estimator in ("gaussian_copula", "binning"):
        gib = GIBLoss(estimator=estimator, weight=0.1)
        t_loss = median_time(loss_only(gib), args.repeats)
        t_with = median_time(step(gib), args.repeats)
        print(
            f"{'GIBLoss ' + estimator + ' fwd+bwd':38s} {t_loss * 1e3:9.1f} ms  "
            f"{100 * t_loss / t_step:5.1f} % of a step" + cuda_syncs(gib)
        )
        print(
            f"{'step with GIBLoss ' + estimator:38s} {t_with * 1e3:9.1f} ms  "
            f"{100 * (t_with / t_step - 1):+5.1f} % vs plain step"
        )
    # what the options cost: each variant of the default loss, forward + backward
    for label, options in (
        ("validate=False", {"validate": False}),
        ("null=False", {"null": False}),
        ("memory=0", {"memory": 0.0}),
        ("memory=0, null=False, validate=False", {"memory": 0.0, "null": False, "validate": False}),
    ):
        variant = GIBLoss(weight=0.1, **options)
        t_var = median_time(loss_only(variant), args.repeats)
        print(f"{'GIBLoss(' + label + ') fwd+bwd':38s} {t_var * 1e3:9.1f} ms" + cuda_syncs(variant))
    for estimator in ("gaussian_copula", "binning"):
        fast = GIBLoss(estimator=estimator, validate=False)
        t_fast = median_time(loss_only(fast), args.repeats)
        print(
            f"{'GIBLoss(' + estimator + ', validate=False)':38s} {t_fast * 1e3:9.1f} ms"
            + cuda_syncs(fast)
        )


if __name__ == "__main__":
    main()

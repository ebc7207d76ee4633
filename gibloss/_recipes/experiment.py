"""Shared machinery of the recipes: configuration, checkpoints, resume, sharded batches, summaries.

A recipe reads top to bottom like the paper's method section; everything that is the same in every
recipe lives here:

* :func:`recipe_parser` — the common flags (``--quick``, ``--seeds``, ``--output-dir``,
  ``--resume``, ``--data-dir``...);
* :class:`Recipe` — resolves the configuration (paper defaults, then ``--quick`` overrides, then
  explicit flags), prints and saves it as ``config.json``, owns the ``Accelerator``, checkpoints,
  progress bars and the summary file;
* :func:`train_monitored` — the training loop shared by the recipes that train a classifier while
  an :class:`~gibloss.InformationPlaneMonitor` records information planes. It checkpoints after
  every measured epoch (model, optimiser, scheduler, RNG states, and the byte length of
  ``metrics.jsonl``), so ``--resume`` continues exactly where the run stopped and ends with the
  same metrics as an uninterrupted run;
* :func:`epoch_batches` — a deterministic per-epoch order of the data, each global batch split
  evenly across processes, so DDP's averaged gradient is the global batch's.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .monitor import InformationPlaneMonitor
from .records import jsonable

__all__ = [
    "Recipe",
    "capture_rng",
    "compression_counts",
    "epoch_batches",
    "recipe_parser",
    "restore_rng",
    "train_monitored",
]


def recipe_parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the flags every recipe has.

    Recipe-specific flags should default to ``None`` so that the paper defaults and ``--quick``
    overrides apply unless a value is given explicitly.
    """
    p = argparse.ArgumentParser(
        description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="a small configuration that finishes in minutes on a CPU",
    )
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="random seeds (one run each)")
    p.add_argument("--output-dir", type=Path, default=None, help="default runs/<recipe>/")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="folder with the real data files (else an embedded stand-in is used)",
    )
    p.add_argument("--cpu", action="store_true", help="force the CPU even when a GPU is present")
    return p


def capture_rng() -> dict[str, Any]:
    """The state of every random generator a recipe uses."""
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),  # noqa: NPY002
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def restore_rng(state: dict[str, Any]) -> None:
    """Restore what :func:`capture_rng` captured."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def epoch_batches(
    n: int,
    batch_size: int,
    seed: int,
    epoch: int,
    rank: int = 0,
    world: int = 1,
    shuffle: bool = True,
) -> list[torch.Tensor]:
    """This process's index batches for one epoch.

    The order depends only on ``(seed, epoch)``; each global batch of ``batch_size`` rows is split
    evenly across the ``world`` processes (a last batch too small to split is dropped when
    ``world > 1``), so the DDP-averaged gradient is that of the global batch.
    """
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    order = torch.randperm(n, generator=g) if shuffle else torch.arange(n)
    out = []
    for s in range(0, n, batch_size):
        b = order[s : s + batch_size]
        if world > 1:
            per = len(b) // world
            if per == 0:
                continue
            b = b[: per * world][rank * per : (rank + 1) * per]
        out.append(b)
    return out


class Recipe:
    """Configuration, output folder, accelerator, checkpoints and summary of one recipe run.

    Parameters
    ----------
    name : str
        Recipe name (default output folder ``runs/<name>/``).
    args : argparse.Namespace
        Parsed flags (from :func:`recipe_parser` plus the recipe's own).
    paper : dict
        Defaults that follow the paper's appendix E.
    quick : dict
        Overrides applied with ``--quick``.
    """

    def __init__(
        self,
        name: str,
        args: argparse.Namespace,
        paper: dict[str, Any],
        quick: dict[str, Any],
        resolve: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        from accelerate import Accelerator

        self.name = name
        self.args = args
        config = dict(paper)
        if args.quick:
            config.update(quick)
        for key in paper:
            value = getattr(args, key, None)
            if value is not None:
                config[key] = value
        if resolve is not None:  # settings that follow from others (e.g. the dataset's lr)
            resolve(config)
        config["seeds"] = list(args.seeds) if args.seeds else config.get("seeds", [0])
        config["quick"] = bool(args.quick)
        config["data_dir"] = str(args.data_dir) if args.data_dir else None
        self.config = config
        use_cpu = args.cpu or not torch.cuda.is_available()
        self.accelerator = Accelerator(cpu=use_cpu)
        self.out = Path(args.output_dir) if args.output_dir else Path("runs") / name
        self.metrics_path = self.out / "metrics.jsonl"
        self.started = time.time()
        self._epochs_this_process = 0
        if self.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            if not args.resume and self.metrics_path.exists():
                self.metrics_path.unlink()  # a fresh run starts a fresh record file
                import shutil

                shutil.rmtree(self.out / "metrics.activations", ignore_errors=True)
                for f in self.out.glob("checkpoint_*.pt"):
                    f.unlink()
            (self.out / "config.json").write_text(json.dumps(jsonable(config), indent=2) + "\n")
            self.log(f"[{name}] configuration:\n" + json.dumps(jsonable(config), indent=2))
        self.accelerator.wait_for_everyone()

    # -- process helpers ---------------------------------------------------------------------

    @property
    def is_main(self) -> bool:
        """Whether this is the main process (the one that writes)."""
        return bool(self.accelerator.is_main_process)

    @property
    def rank(self) -> int:
        return int(self.accelerator.process_index)

    @property
    def world(self) -> int:
        return int(self.accelerator.num_processes)

    @property
    def device(self) -> torch.device:
        return self.accelerator.device

    def log(self, message: str) -> None:
        """Print on the main process."""
        if self.is_main:
            print(message, flush=True)

    def progress(
        self, iterable: Iterable[Any], total: int | None = None, desc: str = ""
    ) -> Iterator[Any]:
        """A tqdm progress bar on the main process; the plain iterable elsewhere."""
        if not self.is_main:
            yield from iterable
            return
        try:
            from tqdm.auto import tqdm
        except ImportError:  # pragma: no cover - tqdm is in the recipes extra
            yield from iterable
            return
        yield from tqdm(
            iterable,
            total=total,
            desc=desc,
            file=sys.stderr,
            dynamic_ncols=True,
            disable=os.environ.get("GIBLOSS_NO_PROGRESS") == "1",
        )

    def epoch_done(self) -> None:
        """Count an epoch finished by this process (the resumption test interrupts here)."""
        self._epochs_this_process += 1

    # -- checkpoints -------------------------------------------------------------------------

    def checkpoint_path(self, tag: str) -> Path:
        return self.out / f"checkpoint_{tag}.pt"

    def save_checkpoint(self, tag: str, state: dict[str, Any]) -> None:
        """Write a checkpoint atomically (main process)."""
        if self.is_main:
            path = self.checkpoint_path(tag)
            tmp = path.with_suffix(".tmp")
            torch.save(state, tmp)
            os.replace(tmp, path)
        self.accelerator.wait_for_everyone()

    def load_checkpoint(self, tag: str) -> dict[str, Any] | None:
        """The checkpoint of ``tag`` when resuming and one exists."""
        path = self.checkpoint_path(tag)
        if not self.args.resume or not path.exists():
            return None
        return torch.load(path, map_location="cpu", weights_only=False)

    def truncate_metrics(self, n_bytes: int) -> None:
        """Drop records written after a checkpoint (they will be measured again)."""
        if self.is_main and self.metrics_path.exists() and self.metrics_bytes() > n_bytes:
            with self.metrics_path.open("r+b") as fh:
                fh.truncate(n_bytes)
        self.accelerator.wait_for_everyone()

    def metrics_bytes(self) -> int:
        return self.metrics_path.stat().st_size if self.metrics_path.exists() else 0

    # -- outputs ----------------------------------------------------------------------------

    def write_summary(self, claim: str, body: list[str], standin: str | None) -> Path | None:
        """Write ``summary.md``: the paper's claim, what this run shows, and data provenance."""
        if not self.is_main:
            return None
        lines = [f"# {self.name}", ""]
        if standin:
            lines += [
                f"> **Data: {standin}.** Numbers below are from this stand-in, not the "
                "paper's data set.",
                "",
            ]
        lines += ["## The paper's claim", "", claim, "", "## What this run shows", ""]
        lines += body
        lines += [
            "",
            f"Configuration: `config.json` (quick = {self.config['quick']}); "
            f"wall time {time.time() - self.started:.0f} s"
            + (" (this invocation, resumed from checkpoints)" if self.args.resume else "")
            + "; "
            f"processes {self.world}; device {self.device}.",
        ]
        path = self.out / "summary.md"
        path.write_text("\n".join(lines) + "\n")
        self.log(f"[{self.name}] wrote {path}")
        return path

    def save_figure(self, fig: Any, name: str) -> Path | None:
        if not self.is_main:
            return None
        path = self.out / name
        fig.savefig(path, dpi=110)
        import matplotlib.pyplot as plt

        plt.close(fig)
        return path


def train_monitored(
    recipe: Recipe,
    *,
    tag: str,
    run: str,
    make_model: Callable[[], torch.nn.Module],
    make_optimizer: Callable[[torch.nn.Module], torch.optim.Optimizer],
    x: torch.Tensor,
    y: torch.Tensor,
    epochs: int,
    batch_size: int,
    loss_fn: Callable[[torch.nn.Module, torch.Tensor, torch.Tensor], torch.Tensor],
    probe: tuple[torch.Tensor, torch.Tensor],
    monitor_kwargs: dict[str, Any],
    measure_every: int = 1,
    make_scheduler: Callable[[torch.optim.Optimizer], Any] | None = None,
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
    seed: int = 0,
    measure_per_epoch: int = 1,
    epoch_offset: float = 0.0,
) -> torch.nn.Module:
    """Train with per-epoch monitoring, checkpoints and exact resume; return the trained model.

    The model is prepared with Accelerate (DDP when several processes run); every process takes
    its shard of each global batch (:func:`epoch_batches`); the monitor measures on the main
    process at epoch 0, every ``measure_every`` epochs and at the last epoch, before the
    checkpoint of that epoch is written. With ``measure_per_epoch = k > 1`` a measured epoch is
    measured ``k`` times at evenly spaced batches (record epochs ``epoch + j / k``).
    ``epoch_offset`` is added to recorded epochs (for a run in phases).
    """
    from accelerate.utils import set_seed

    acc = recipe.accelerator
    set_seed(seed)  # Python, numpy, torch (and CUDA): Accelerate's, not a copy of it
    model = make_model()
    opt = make_optimizer(model)
    sched = make_scheduler(opt) if make_scheduler else None
    start = 0
    ckpt = recipe.load_checkpoint(tag)
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        if sched is not None and ckpt.get("scheduler") is not None:
            sched.load_state_dict(ckpt["scheduler"])
        restore_rng(ckpt["rng"])
        start = ckpt["epoch"] + 1
        if ckpt.get("done"):
            recipe.log(f"[{recipe.name}] {run}: finished earlier, skipped")
            return model
        recipe.truncate_metrics(ckpt["metrics_bytes"])
    model, opt = acc.prepare(model, opt)
    monitor = InformationPlaneMonitor(
        model,
        probe,
        path=recipe.metrics_path,
        run=run,
        accelerator=acc,
        resume=ckpt is not None,
        **monitor_kwargs,
    )
    x, y = x.to(recipe.device), y.to(recipe.device)
    for epoch in recipe.progress(range(start, epochs), total=epochs - start, desc=run):
        model.train()
        gen = torch.Generator().manual_seed(seed * 7919 + epoch)
        last = epoch == epochs - 1
        measured = epoch % measure_every == 0 or last
        batches = epoch_batches(len(x), batch_size, seed, epoch, recipe.rank, recipe.world)
        marks = (
            {
                round((j + 1) * len(batches) / measure_per_epoch) - 1: (j + 1) / measure_per_epoch
                for j in range(measure_per_epoch)
            }
            if measured
            else {}
        )
        for b, idx in enumerate(batches):
            xb, yb = x[idx], y[idx]
            if augment is not None:
                xb = augment(xb, gen)
            loss = loss_fn(model, xb, yb)
            opt.zero_grad()
            acc.backward(loss)
            opt.step()
            if b in marks and measure_per_epoch > 1:
                monitor.measure(epoch=epoch_offset + epoch + marks[b], step=b)
                model.train()
        if sched is not None:
            sched.step()
        if measured and measure_per_epoch == 1:
            monitor.measure(epoch=epoch_offset + epoch)
        if last:
            monitor.close()
        if measured:
            recipe.save_checkpoint(
                tag,
                {
                    "model": acc.unwrap_model(model).state_dict(),
                    "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict() if sched is not None else None,
                    "rng": capture_rng(),
                    "epoch": epoch,
                    "metrics_bytes": recipe.metrics_bytes(),
                    "done": last,
                },
            )
        recipe.epoch_done()
    if not monitor.closed:
        monitor.close()
    return acc.unwrap_model(model)


def gib_readings(
    records: list[dict[str, Any]], *, prefix: str = "", estimator: str | None = None
) -> dict[str, Any]:
    """The GIB plane of the runs whose name starts with ``prefix``, read with its diagnostics.

    Returns
    -------
    dict
        ``runs``; ``compressed`` and ``causes`` (a count per cause, see
        :func:`gibloss.compression`); ``argmax_compressed`` and ``argmax_runs`` (the same plane
        with Z coded by its argmax, where recorded); ``r_h_q``, the correlation over time of the
        complexity with the weighted entropy of Q, one per run; ``cell``, all of it as one
        Markdown table cell.
    """
    from .phases import compression, trajectory_compression
    from .records import trajectories

    trs = trajectories(records, "gib", estimator=estimator)
    runs = [r for r in trs if r.startswith(prefix) and trs[r]["time"].size >= 2]
    causes: dict[str, int] = {}
    arg_hits = arg_runs = 0
    r_h_q: list[float] = []
    for r in runs:
        d = trs[r]
        s = trajectory_compression(d)
        if s.compressed:
            key = s.cause or "no diagnostics"
            causes[key] = causes.get(key, 0) + 1
        if "argmax_complexity" in d:
            arg_runs += 1
            arg_hits += compression(
                d["argmax_complexity"], d["argmax_prediction"], d["time"]
            ).compressed
        if "h_q" in d and np.std(d["h_q"]) > 0 and np.std(d["complexity"]) > 0:
            r_h_q.append(float(np.corrcoef(d["complexity"], d["h_q"])[0, 1]))
    hits = sum(causes.values())
    why = ", ".join(f"{v} {k}" for k, v in sorted(causes.items()))
    cell = f"{hits}/{len(runs)}" + (f" ({why})" if why else "")
    if arg_runs:
        cell += f"; argmax-coded {arg_hits}/{arg_runs}"
    if r_h_q:
        cell += f"; r(complexity, H(Q)) {min(r_h_q):+.3f} to {max(r_h_q):+.3f}"
    return {
        "runs": len(runs),
        "compressed": hits,
        "causes": causes,
        "argmax_compressed": arg_hits,
        "argmax_runs": arg_runs,
        "r_h_q": r_h_q,
        "cell": cell,
    }


def compression_counts(
    records: list[dict[str, Any]],
    kind: str,
    *,
    prefix: str = "",
    estimator: str | None = None,
    layer: str = "output",
    convention: str = "per_call",
) -> tuple[int, int]:
    """How many runs (whose name starts with ``prefix``) show compression in the plane ``kind``."""
    from .phases import compression
    from .records import trajectories

    trs = trajectories(records, kind, estimator=estimator, layer=layer, convention=convention)
    runs = [r for r in trs if r.startswith(prefix)]
    hits = sum(
        compression(trs[r]["complexity"], trs[r]["prediction"], trs[r]["time"]).compressed
        for r in runs
        if trs[r]["time"].size >= 2
    )
    return int(hits), len(runs)

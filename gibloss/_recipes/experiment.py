"""Shared machinery of the recipes: configuration, checkpoints, resume, sharded batches, summaries.

A recipe reads top to bottom like the paper's method section; everything that is the same in every
recipe lives here:

* :func:`recipe_parser` — the common flags (``--quick``, ``--seeds``, ``--output-dir``,
  ``--resume``, ``--data-dir``...);
* :class:`Recipe` — resolves the configuration (paper defaults, then ``--quick`` overrides, then
  explicit flags), prints and saves it as ``config.json``, owns the ``Accelerator``, checkpoints,
  progress bars and the summary file;
* checkpoints through Accelerate's ``save_state``/``load_state`` (the prepared model, optimiser
  and scheduler and every process's RNG states) plus ``progress.json`` (epoch, the byte length
  of ``metrics.jsonl``, done), so ``--resume`` continues exactly where the run stopped and ends
  with the same metrics as an uninterrupted run;
* the steps of a recipe's training loop, which each recipe writes out like an Accelerate example
  (``recipes/regularised_vs_plain.py`` is the one to read first): :meth:`Recipe.batches` (this
  process's shard of each global batch), :meth:`Recipe.monitor` (the run's
  :class:`~gibloss.InformationPlaneMonitor`), :meth:`Recipe.resume_run` and
  :meth:`Recipe.end_epoch` (measure when due, close, checkpoint);
* :meth:`Recipe.write_summary`, :meth:`Recipe.save_planes` — every recipe's outputs (the
  readings of its records are :mod:`gibloss._recipes.reports`);
* :func:`epoch_batches` — a deterministic per-epoch order of the data, each global batch split
  evenly across processes, so DDP's averaged gradient is the global batch's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from ..monitor import InformationPlaneMonitor
from ..records import jsonable

__all__ = [
    "SETTING_FLAGS",
    "Recipe",
    "epoch_batches",
    "recipe_parser",
]


#: Flags that override the setting of the same name, for the recipes that name them in
#: :func:`recipe_parser` (``n_train`` is ``--n-train``).
SETTING_FLAGS: dict[str, dict[str, Any]] = {
    "epochs": {"type": int, "help": "training epochs of each run"},
    "lr": {"type": float, "help": "learning rate"},
    "measure_every": {"type": int, "help": "measure every k epochs (and at the first and last)"},
    "n_train": {"type": int, "help": "keep the first N training rows (default all)"},
    "n_test": {"type": int, "help": "keep the first N test rows (default all)"},
    "probe_size": {"type": int, "help": "training rows the monitor measures on"},
}


def recipe_parser(description: str, *settings: str) -> argparse.ArgumentParser:
    """An argument parser with the flags every recipe has, and one flag per name in
    ``settings`` (from :data:`SETTING_FLAGS`).

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
    for name in settings:
        flag = "--" + name.replace("_", "-")
        p.add_argument(flag, dest=name, default=None, **SETTING_FLAGS[name])
    return p


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
        # schedulers step per epoch, as written (not once per process and optimiser step)
        self.accelerator = Accelerator(cpu=use_cpu, step_scheduler_with_optimizer=False)
        self.out = Path(args.output_dir) if args.output_dir else Path("runs") / name
        self.metrics_path = self.out / "metrics.jsonl"
        self.started = time.time()
        self._epochs_this_process = 0

    def start(self) -> None:
        """Open the output folder: the one step that writes (and, afresh, clears) anything.

        Without ``--resume``, a fresh run starts fresh records: the folder's previous
        ``metrics.jsonl``, kept activations and checkpoints are removed (other files stay).
        With ``--resume`` nothing is removed. Then ``config.json`` is written and logged. The
        constructor touches no file, so a script reads top to bottom where its outputs begin.
        """
        if self.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            if not self.args.resume and self.metrics_path.exists():
                self.metrics_path.unlink()
                shutil.rmtree(self.out / "metrics.activations", ignore_errors=True)
                shutil.rmtree(self.out / "checkpoints", ignore_errors=True)
            text = json.dumps(jsonable(self.config), indent=2)
            (self.out / "config.json").write_text(text + "\n")
            self.log(f"[{self.name}] configuration:\n" + text)
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

    def checkpoint_dir(self, tag: str) -> Path:
        """The checkpoint folder of one run (``checkpoints/<tag>/``)."""
        return self.out / "checkpoints" / tag

    def save_checkpoint(
        self,
        tag: str,
        *,
        epoch: int,
        done: bool,
        extra: Mapping[str, torch.nn.Module] | None = None,
    ) -> None:
        """Save the accelerator's state after ``epoch`` as the checkpoint of ``tag``.

        Every process calls it. ``accelerator.save_state`` writes the prepared models,
        optimisers and schedulers and each process's RNG states into a temporary folder;
        ``extra`` modules that are not prepared (a loss with state, e.g. a GIBLoss's memory)
        go beside them as ``<name>.pt``; ``progress.json`` (the epoch, whether the run is done,
        and the byte length of ``metrics.jsonl`` now), written last, marks it complete; it then
        replaces the previous checkpoint by renaming, so a kill at any moment leaves one
        complete checkpoint.
        """
        acc = self.accelerator
        final = self.checkpoint_dir(tag)
        tmp, old = final.with_name(tag + ".tmp"), final.with_name(tag + ".old")
        if self.is_main:
            shutil.rmtree(tmp, ignore_errors=True)
        acc.wait_for_everyone()
        acc.save_state(str(tmp))
        acc.wait_for_everyone()
        if self.is_main:
            for name, module in (extra or {}).items():
                torch.save(module.state_dict(), tmp / f"{name}.pt")
            progress = {"epoch": epoch, "metrics_bytes": self.metrics_bytes(), "done": done}
            (tmp / "progress.json").write_text(json.dumps(progress) + "\n")
            if final.exists():  # else .old may be the only complete checkpoint: keep it
                shutil.rmtree(old, ignore_errors=True)
                os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        acc.wait_for_everyone()

    def load_checkpoint(
        self, tag: str, extra: Mapping[str, torch.nn.Module] | None = None
    ) -> dict[str, Any] | None:
        """With ``--resume``: restore the state of ``tag``'s checkpoint into the prepared objects
        (``accelerator.load_state``) and the ``extra`` modules, and return its progress; else, or
        without one, None.

        A checkpoint resumes under the number of processes that wrote it (Accelerate saves the
        wrapped model and one RNG state per process); another number raises ``ValueError``.
        """
        if not self.args.resume:
            return None
        final = self.checkpoint_dir(tag)
        # .old: the previous checkpoint, when a kill fell between the two renames
        for d in (final, final.with_name(tag + ".old")):
            if (d / "progress.json").exists():
                saved_by = len(list(d.glob("random_states_*.pkl")))
                if saved_by != self.world:
                    raise ValueError(
                        f"checkpoint {d} was written by {saved_by} process(es); resume it with "
                        f"{saved_by}, not {self.world} (or start afresh without --resume)"
                    )
                self.accelerator.load_state(str(d))
                # onto this process's device (a two-process CPU run's is "cpu:0", which
                # torch.load cannot map to: plain "cpu" there)
                device = self.device if self.device.type != "cpu" else torch.device("cpu")
                for name, module in (extra or {}).items():
                    saved = torch.load(d / f"{name}.pt", map_location=device, weights_only=True)
                    module.load_state_dict(saved)
                return dict(json.loads((d / "progress.json").read_text()))
        return None

    def resume_run(
        self,
        tag: str,
        run: str,
        epochs: int,
        extra: Mapping[str, torch.nn.Module] | None = None,
    ) -> int:
        """The first epoch run ``run`` trains: 0 afresh; with ``--resume`` and a checkpoint of
        ``tag``, the epoch after it (its state restored by :meth:`load_checkpoint`, and the
        records written after it dropped: they are measured again); ``epochs`` when the run
        finished earlier. Call it after ``accelerator.prepare``."""
        progress = self.load_checkpoint(tag, extra)
        if progress is None:
            return 0
        if progress["done"]:
            self.log(f"[{self.name}] {run}: finished earlier, skipped")
            return epochs
        self.truncate_metrics(progress["metrics_bytes"])
        return int(progress["epoch"]) + 1

    def truncate_metrics(self, n_bytes: int) -> None:
        """Drop records written after a checkpoint (they will be measured again)."""
        if self.is_main and self.metrics_path.exists() and self.metrics_bytes() > n_bytes:
            with self.metrics_path.open("r+b") as fh:
                fh.truncate(n_bytes)
        self.accelerator.wait_for_everyone()

    def metrics_bytes(self) -> int:
        return self.metrics_path.stat().st_size if self.metrics_path.exists() else 0

    # -- the steps of a training loop -----------------------------------------------------

    def batches(self, n: int, batch_size: int, seed: int, epoch: int) -> list[torch.Tensor]:
        """This process's index batches of ``epoch`` over ``n`` rows (:func:`epoch_batches`:
        an order fixed by ``(seed, epoch)``, each global batch split across the processes)."""
        return epoch_batches(n, batch_size, seed, epoch, self.rank, self.world)

    def monitor(
        self,
        model: torch.nn.Module,
        probe: tuple[torch.Tensor, torch.Tensor],
        run: str,
        *,
        resume: bool,
        **options: Any,
    ) -> InformationPlaneMonitor:
        """The information-plane monitor of ``run``, writing to this recipe's ``metrics.jsonl``
        from the main process (``resume``: the run continues from a checkpoint; the records
        after it were dropped by :meth:`resume_run`). ``options`` are the monitor's."""
        return InformationPlaneMonitor(
            model,
            probe,
            path=self.metrics_path,
            run=run,
            accelerator=self.accelerator,
            resume=resume,
            **options,
        )

    def end_epoch(
        self,
        monitor: InformationPlaneMonitor,
        tag: str,
        epoch: int,
        epochs: int,
        every: int = 1,
        *,
        extra: Mapping[str, torch.nn.Module] | None = None,
        measure: bool = True,
    ) -> None:
        """After ``epoch`` of ``epochs``: at epoch 0, every ``every`` epochs and the last, the
        monitor measures (unless ``measure`` is False: the loop measured inside the epoch),
        closes after the last measurement, and the checkpoint of ``tag`` is written (with the
        modules of ``extra``); then the epoch is counted (:meth:`epoch_done`)."""
        last = epoch == epochs - 1
        if epoch % every == 0 or last:
            if measure:
                monitor.measure(epoch=epoch)
            if last:
                monitor.close()  # before the checkpoint that marks the run done
            self.save_checkpoint(tag, epoch=epoch, done=last, extra=extra)
        self.epoch_done()

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

    def save_planes(
        self,
        records: list[dict[str, Any]],
        name: str,
        runs: list[str],
        *,
        gib: dict[str, Any] | None = None,
        ib: dict[str, Any] | None = None,
    ) -> None:
        """Save the GIB and IB planes of ``runs`` as ``gib_<name>.png`` and ``ib_<name>.png``;
        ``gib``/``ib`` are extra keyword arguments of :func:`gibloss.plot_information_plane`."""
        from ..plotting import plot_information_plane

        for kind, extra in (("gib", gib), ("ib", ib)):
            fig = plot_information_plane(records, kind, runs=runs, **(extra or {}))
            self.save_figure(fig, f"{kind}_{name}.png")

    def save_figure(self, fig: Any, name: str) -> Path | None:
        if not self.is_main:
            return None
        path = self.out / name
        fig.savefig(path, dpi=110)
        import matplotlib.pyplot as plt

        plt.close(fig)
        return path

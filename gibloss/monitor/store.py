"""The run store: where a monitored run's records and kept activations live.

:class:`RunStore` owns one run of a JSON Lines file: its run id (a second run to a file never
merges into the first), the header, append-only records, the per-measurement activation files of
the run-wide binning convention, and resuming. Only the main process writes;
:mod:`gibloss.distributed` says which process that is.
"""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .._validation import as_array
from ..distributed import is_main_process
from ..records import append_record, read_records
from .record import run_range_records

__all__ = ["RunStore", "recompute_run_range"]


def _compact(a: np.ndarray) -> np.ndarray:
    """``a`` in the smallest float dtype (float16, float32, float64) that holds it finitely.

    Activations are kept small on disk; one above float16's 65504 (a regression output in raw
    units, an unnormalised layer) would become inf there and break the run-wide range.
    """
    a = np.asarray(a)
    peak = float(np.abs(a).max()) if a.size else 0.0
    for dt in (np.float16, np.float32):
        if peak <= float(np.finfo(dt).max):
            return a.astype(dt)
    return a.astype(np.float64)


def _activations_dir(path: Path, run: str) -> Path:
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in run)
    return path.with_name(path.stem + ".activations") / safe


def _fresh_run(path: Path, run: str, overwrite: bool) -> str:
    """The run id a new run in ``path`` gets: ``run`` when unused (or overwritten), else the
    first free ``run-k``, with a warning."""
    records = read_records(path)
    used = {str(r.get("run")) for r in records}
    if run not in used:
        return run
    if overwrite:
        kept = [r for r in records if str(r.get("run")) != run]
        tmp = path.with_name(path.name + ".tmp")
        tmp.unlink(missing_ok=True)
        tmp.touch()  # the file may hold this run alone: nothing is kept
        for r in kept:
            append_record(tmp, r)
        os.replace(tmp, path)  # atomic: the file holds either the old or the new records
        old = _activations_dir(path, run)
        if old.exists():
            shutil.rmtree(old)
        return run
    k = 2
    while f"{run}-{k}" in used:
        k += 1
    new = f"{run}-{k}"
    warnings.warn(
        f"{path} already holds run {run!r}; this run is recorded as {new!r} (pass resume=True "
        "to continue the old run, or overwrite=True to replace it)",
        UserWarning,
        stacklevel=4,
    )
    return new


def _load_kept(adir: Path) -> tuple[list[dict[str, np.ndarray]], list[dict[str, Any]]]:
    files = sorted(adir.glob("m*.npz"))
    acts, meta = [], []
    for f in files:
        with np.load(f) as z:
            idx, step = (int(v) for v in z["meta"])
            epoch = float(z["epoch"])
            acts.append({k: z[k] for k in z.files if k not in ("meta", "epoch")})
        meta.append(
            {
                "index": idx,
                "step": None if step < 0 else step,
                "epoch": None if np.isnan(epoch) else epoch,
            }
        )
    return acts, meta


class RunStore:
    """One run's records in a JSON Lines file (or in memory), with its kept activations.

    Parameters
    ----------
    path : str or Path, optional
        JSON Lines file; None keeps everything in memory (``records``).
    run : str
        The run id asked for (settled by :meth:`open`, which the constructor does not call:
        it touches no file).
    resume : bool
        Continue run ``run`` of an existing file: measurement indices go on from its last
        record, and kept activations of measurements without a record are dropped.
    overwrite : bool
        See :meth:`open`.
    accelerator : accelerate.Accelerator, optional
        Which process is the main one (else :func:`gibloss.distributed.is_main_process`).

    Attributes
    ----------
    run : str
        The run id this run is recorded under.
    next_index : int
        Index of the next measurement.
    records : list of dict
        The records this store appended in this process.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        run: str = "run",
        *,
        resume: bool = False,
        overwrite: bool = False,
        accelerator: Any = None,
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.run = str(run)
        self.is_main = is_main_process(accelerator)
        self.resumed = bool(resume and self.path is not None and self.path.exists())
        self.next_index = 0
        self.records: list[dict[str, Any]] = []
        self._memory: list[tuple[dict[str, np.ndarray], dict[str, Any]]] = []
        self.overwrite = bool(overwrite)
        self.opened = False

    def open(self) -> RunStore:
        """Settle the run in its file: the one step that reads or changes what is there.

        Resumed: measurement indices go on from the run's last record, and kept activations of
        measurements whose record did not survive are dropped. Otherwise, when the file already
        holds the run: it gets the first free id ``run-2``, ``run-3``... with a warning, or,
        with ``overwrite``, the old run's records and activations are dropped (other runs stay).
        The constructor touches no file. Returns the store; opening twice does nothing.
        """
        if self.opened:
            return self
        self.opened = True
        if self.resumed:
            assert self.path is not None
            done = [
                r
                for r in read_records(self.path)
                if r.get("kind") == "measurement" and r.get("run") == self.run
            ]
            self.next_index = 1 + max((int(r["index"]) for r in done), default=-1)
            adir = self.activations_dir
            if self.is_main and adir is not None and adir.exists():
                for f in adir.glob("m*.npz"):
                    if int(f.stem[1:]) >= self.next_index:
                        f.unlink()  # kept for a measurement whose record did not survive
        elif self.is_main and self.path is not None and self.path.exists():
            self.run = _fresh_run(self.path, self.run, self.overwrite)
        return self

    @property
    def activations_dir(self) -> Path | None:
        """Where run-range activations are kept (beside the records, one folder per run)."""
        return None if self.path is None else _activations_dir(self.path, self.run)

    def append(self, record: dict[str, Any]) -> None:
        """Append one record (written at once, so a crash loses nothing already measured).

        Only the main process keeps and writes records; on the others this does nothing.
        """
        if not self.opened:
            raise RuntimeError("RunStore.open() must be called before records are appended")
        if not self.is_main:
            return
        self.records.append(record)
        if self.path is not None:
            append_record(self.path, record)

    def write_header(self, header: Mapping[str, Any]) -> None:
        """Append the run's header (main process), unless the run is resumed (it has one)."""
        if self.is_main and not self.resumed:
            self.append({"kind": "header", "run": self.run, **header})

    def keep(
        self, activations: Mapping[str, np.ndarray], step: int | None, epoch: float | None
    ) -> None:
        """Keep one measurement's activations (compact floats) for the run-wide convention."""
        meta = {"index": self.next_index, "step": step, "epoch": epoch}
        small = {k: _compact(v) for k, v in activations.items()}
        adir = self.activations_dir
        if adir is None:
            self._memory.append((small, meta))
            return
        adir.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            adir / f"m{self.next_index:06d}.npz",
            meta=np.array([self.next_index, -1 if step is None else step]),
            epoch=np.array(np.nan if epoch is None else epoch),
            **small,
        )

    def kept(self) -> tuple[list[dict[str, np.ndarray]], list[dict[str, Any]]]:
        """The kept activations and their ``index``/``step``/``epoch``, in measurement order."""
        adir = self.activations_dir
        if adir is None:
            return [a for a, _ in self._memory], [m for _, m in self._memory]
        return _load_kept(adir) if adir.exists() else ([], [])


def recompute_run_range(
    path: str | Path,
    y: Any,
    x: Any,
    *,
    bins: int = 30,
    run: str | None = None,
    write: bool = True,
) -> list[dict[str, Any]]:
    """Recompute IB with one bin range per layer over a run, from the kept activations.

    Parameters
    ----------
    path : str or Path
        The run's JSON Lines file; activations are read from ``<stem>.activations/<run>/``.
    y, x : array-like
        The probe's targets and inputs (the same probe the monitor used).
    bins : int
        Number of bins over each layer's run-wide range.
    run : str, optional
        Run identifier (default: the header's).
    write : bool
        Append the new records to ``path``.

    Returns
    -------
    list of dict
        One ``"ib_run_range"`` record per kept measurement.
    """
    path = Path(path)
    if run is None:
        headers = [r for r in read_records(path) if r.get("kind") == "header"]
        run = headers[0]["run"] if headers else "run"
    adir = _activations_dir(path, run)
    acts, meta = _load_kept(adir) if adir.exists() else ([], [])
    if not acts:
        raise FileNotFoundError(f"no kept activations under {adir}")
    x_rows = as_array(np.asarray(x).reshape(len(acts[0]["output"]), -1), "x")
    recs = run_range_records(acts, meta, np.asarray(y), x_rows, bins, run)
    if write:
        for r in recs:
            append_record(path, r)
    return recs

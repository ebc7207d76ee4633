"""JSON Lines run records: append-only writing and tolerant reading.

Every measurement is one line, written and flushed as soon as it is made, so a crash loses nothing
already measured. Reading skips a torn last line (a crash mid-write) with a warning and rejects
anything else malformed with the line number.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from .split import synergy_split

__all__ = [
    "append_record",
    "first_estimator",
    "jsonable",
    "read_records",
    "time_axis",
    "trajectories",
]


def jsonable(obj: Any) -> Any:
    """Convert numpy / torch values to plain JSON types (non-finite floats become ``None``)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return jsonable(obj.item())
    if hasattr(obj, "detach") and hasattr(obj, "tolist"):  # torch tensors
        return jsonable(obj.detach().cpu().tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def append_record(path: str | os.PathLike[str], record: dict[str, Any]) -> None:
    """Append one record as a JSON line and flush it to disk."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(jsonable(record), allow_nan=False)
    with p.open("a", encoding="utf-8") as fh:
        fh.write(line + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def read_records(source: str | os.PathLike[str] | Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records from a JSON Lines file (or an iterable of dicts, returned as a list).

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    ValueError
        When a line other than a torn last line is not a JSON object.
    """
    if not isinstance(source, (str, os.PathLike)):
        records = list(source)
        for i, r in enumerate(records):
            if not isinstance(r, dict):
                raise TypeError(f"record {i} must be a dict, got {type(r).__name__}")
        return records
    p = Path(source)
    if not p.exists():
        raise FileNotFoundError(f"no such record file: {p}")
    lines = p.read_text(encoding="utf-8").splitlines()
    records = []
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            if i == len(lines):
                warnings.warn(
                    f"{p}:{i}: ignoring a torn last line (the run was probably interrupted)",
                    RuntimeWarning,
                    stacklevel=2,
                )
                break
            raise ValueError(f"{p}:{i}: not a JSON record ({err.msg})") from None
        if not isinstance(obj, dict):
            raise ValueError(f"{p}:{i}: a record must be a JSON object, got {type(obj).__name__}")
        records.append(obj)
    return records


def _time_of(record: dict[str, Any]) -> float:
    for key in ("epoch", "step", "index"):
        if record.get(key) is not None:
            return float(record[key])
    return float("nan")


def time_axis(records: list[dict[str, Any]]) -> str:
    """The time key records share: ``"epoch"``, else ``"step"``, else ``"index"``."""
    for key in ("epoch", "step"):
        if records and all(r.get(key) is not None for r in records):
            return key
    return "index"


def trajectories(
    records: list[dict[str, Any]],
    kind: str = "gib",
    *,
    estimator: str | None = None,
    layer: str = "output",
    convention: str = "per_call",
) -> dict[str, dict[str, np.ndarray]]:
    """Per-run trajectories ``{run: {"time", "complexity", "prediction"}}`` from records.

    GIB trajectories also carry ``"h_q"`` and ``"max_p"`` (the weighted entropy of Q and the
    mean max-p), ``"null_complexity"`` / ``"null_prediction"`` (the shuffled-label null),
    ``"argmax_complexity"`` / ``"argmax_prediction"`` (the plane with Z coded by its argmax),
    and ``"whole"`` / ``"synergy_share"`` (``I(X;Q)`` and ``s``, the exact split of Eq. 5's
    complexity, :mod:`gibloss.split`; records of ``variant="sum_vs_whole"`` have no split),
    when every point recorded them.

    Parameters
    ----------
    records : list of dict
        Monitor records (headers and other kinds are skipped).
    kind : {"gib", "ib"}
        Which plane.
    estimator : str, optional
        Estimator name; default the first one found.
    layer : str
        IB layer (``"output"`` is the model output).
    convention : {"per_call", "run_range"}
        IB binning convention.
    """
    if kind not in ("gib", "ib"):
        raise ValueError(f"`kind` must be 'gib' or 'ib', got {kind!r}")
    wanted = "ib_run_range" if (kind == "ib" and convention == "run_range") else "measurement"
    rows = [r for r in records if r.get("kind") == wanted and r.get(kind)]
    if not rows:
        raise ValueError(f"no {kind.upper()} records ({wanted}) found")
    if estimator is None:
        estimator = next(iter(rows[0][kind]))
    runs: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        runs.setdefault(str(r.get("run", "run")), []).append(r)
    out: dict[str, dict[str, np.ndarray]] = {}
    for run, rs in runs.items():
        axis = time_axis(rs)
        pts = []
        for r in rs:
            terms = estimator_entry(r[kind], estimator)
            if terms is None:
                if wanted == "ib_run_range":
                    raise ValueError(
                        f"run_range IB records hold binning only (one bin range per layer over "
                        f"the run), not estimator {estimator!r}; use convention='per_call' for it"
                    )
                raise ValueError(
                    f"estimator {estimator!r} not in the {kind} records of run {run!r}; "
                    f"available: {sorted(r[kind])}"
                )
            if kind == "ib":
                if layer not in terms:
                    raise ValueError(
                        f"layer {layer!r} not in the IB records of run {run!r}; "
                        f"available: {sorted(terms)}"
                    )
                terms = terms[layer]
            diag = terms.get("diagnostics") or {}
            argmax = terms.get("argmax") or {}
            whole, share = np.nan, np.nan
            if kind == "gib" and "whole" in terms and "single" in terms:
                if (terms.get("settings") or {}).get("variant", "synergy") == "synergy":
                    whole = float(terms["whole"])
                    share = float(
                        terms["synergy_share"]
                        if "synergy_share" in terms
                        else synergy_split(
                            whole,
                            np.asarray(terms["single"], dtype=float),
                            np.asarray(terms["complement"], dtype=float),
                        )[1]
                    )
            pts.append(
                (
                    float(r[axis]) if r.get(axis) is not None else _time_of(r),
                    terms["complexity"],
                    terms["prediction"],
                    float(diag.get("h_q", np.nan)),
                    float(diag.get("mean_max_p", np.nan)),
                    float((terms.get("null") or {}).get("complexity", np.nan)),
                    float((terms.get("null") or {}).get("prediction", np.nan)),
                    float(argmax.get("complexity", np.nan)),
                    float(argmax.get("prediction", np.nan)),
                    whole,
                    share,
                )
            )
        pts.sort(key=lambda v: v[0])
        arr = np.array(pts, dtype=float)
        out[run] = {
            "time": arr[:, 0],
            "complexity": arr[:, 1],
            "prediction": arr[:, 2],
            "axis": np.array(axis),
        }
        # output-side diagnostics of GIB records, where every point has them
        extra = ("h_q", "max_p", "null_complexity", "null_prediction", "argmax_complexity",
                 "argmax_prediction", "whole", "synergy_share")
        for col, key in enumerate(extra, start=3):
            if np.all(np.isfinite(arr[:, col])):
                out[run][key] = arr[:, col]
    return out


def first_estimator(records: list[dict[str, Any]], kind: str = "gib") -> str:
    """The first estimator name recorded under ``kind`` (``"gib"`` or ``"ib"``), or ``"?"``."""
    return next(
        (next(iter(r[kind])) for r in records if isinstance(r.get(kind), dict) and r[kind]), "?"
    )


def estimator_entry(by_estimator: dict[str, Any], name: str) -> Any:
    """``by_estimator[name]``, also under the names gibloss 0.1 recorded (``"gcmi"``); or None.

    Records written by 0.1 key the Gaussian copula as ``"gcmi"``; either spelling reads either.
    """
    from .estimators import name_aliases

    for alias in dict.fromkeys((name, *name_aliases(name))):
        if alias in by_estimator:
            return by_estimator[alias]
    return None

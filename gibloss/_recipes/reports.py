"""What the recipes' summaries read from their records: compression counts and GIB readings.

* :func:`compression_sentence` — the definition of compression the summaries count, from the
  defaults of :func:`gibloss.compression`;
* :func:`gib_readings` — the GIB plane of a group of runs with its diagnostics, as one table cell;
* :func:`compression_counts` — how many runs of a group compress in a plane;
* :func:`markdown_table` — a summary's table.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

__all__ = ["compression_counts", "compression_sentence", "gib_readings", "markdown_table"]


def markdown_table(header: list[str], rows: list[list[Any]]) -> list[str]:
    """The lines of a Markdown table: ``header``, the separator, one line per row."""
    lines = [header, ["---"] * len(header), *rows]
    return ["| " + " | ".join(str(c) for c in cells) + " |" for cells in lines]


def compression_sentence() -> str:
    """The definition of compression that the summaries count, from the defaults of
    :func:`gibloss.compression` (so the text cannot drift from the detector)."""
    from ..phases import compression

    params = inspect.signature(compression).parameters
    fit, thr, drop = (params[k].default for k in ("fit_fraction", "threshold", "min_drop"))
    return (
        f"Compression = after the fitting point (the prediction has covered {fit:.0%} of its "
        f"rise), the complexity ends at least {thr:.0%} of its range and at least {drop:g} bits "
        "below its peak (`gibloss.compression`)."
    )


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
    from ..phases import compression, trajectory_compression
    from ..records import trajectories

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
    from ..phases import compression
    from ..records import trajectories

    trs = trajectories(records, kind, estimator=estimator, layer=layer, convention=convention)
    runs = [r for r in trs if r.startswith(prefix)]
    hits = sum(
        compression(trs[r]["complexity"], trs[r]["prediction"], trs[r]["time"]).compressed
        for r in runs
        if trs[r]["time"].size >= 2
    )
    return int(hits), len(runs)

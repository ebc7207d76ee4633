"""Run summaries: per plane and run, where each term starts, peaks and ends, and whether
the complexity compressed (the table ``gibloss summary`` prints)."""

from __future__ import annotations

from typing import Any

from .phases import trajectory_compression
from .records import trajectories

__all__ = ["summary_table"]


def summary_table(
    records: list[dict[str, Any]],
    *,
    estimator: str | None = None,
    layer: str = "output",
    threshold: float = 0.1,
    min_drop: float = 0.05,
) -> str:
    """A markdown table per plane: start, peak and end of each term, and compression detected.

    Compression follows :func:`gibloss.compression` (peak after fitting, a drop of at least
    ``threshold`` of the complexity's range and at least ``min_drop`` bits). For GIB records with
    output diagnostics, each detected drop is labelled "saturation" (the complexity fell with
    Q's entropy or with rising confidence) or "compression".
    """
    lines = []
    for kind, conventions in (("gib", ("per_call",)), ("ib", ("per_call", "run_range"))):
        for conv in conventions:
            try:
                trs = trajectories(records, kind, estimator=estimator, layer=layer, convention=conv)
            except ValueError:
                continue
            name = estimator or next(
                (next(iter(r[kind])) for r in records if isinstance(r.get(kind), dict) and r[kind]),
                "?",
            )
            title = f"GIB, estimator {name!r}" if kind == "gib" else (
                f"IB, estimator {name!r}, layer {layer!r}, {conv} binning"
            )
            lines += [
                f"## {title}",
                "",
                "| run | points | complexity start | peak | end | prediction start | peak | end "
                "| compression | starts at |",
                "|---|---|---|---|---|---|---|---|---|---|",
            ]
            detected = 0
            for run, d in trs.items():
                if d["time"].size < 2:
                    lines.append(
                        f"| {run} | {d['time'].size} | — | — | — | — | — | too short | — |"
                    )
                    continue
                s = trajectory_compression(d, threshold=threshold, min_drop=min_drop)
                detected += s.compressed
                start = "—" if s.start is None else f"{d['axis']} {s.start:g}"
                if "null_complexity" in d:  # the last point minus its shuffled-label null
                    corrected = (
                        f"; end − null: complexity {s.end - d['null_complexity'][-1]:.3f}, "
                        f"prediction {d['prediction'][-1] - d['null_prediction'][-1]:.3f}"
                    )
                else:
                    corrected = ""
                verdict = "no"
                if s.compressed:
                    cause = f"{s.cause}: " if s.cause else ""
                    verdict = (
                        f"yes, {cause}drop of {s.drop:.3f} bits "
                        f"({100 * s.relative_drop:.0f} % of the range)"
                    )
                if "argmax_complexity" in d:  # the decision-coded reading of the same plane
                    a = d["argmax_complexity"]
                    verdict += f"; argmax-coded complexity {a[0]:.3f} → {a[-1]:.3f}"
                lines.append(
                    f"| {run} | {d['time'].size} | {s.first:.3f} | {s.peak:.3f} | {s.end:.3f} "
                    f"| {d['prediction'][0]:.3f} | {d['prediction'].max():.3f} "
                    f"| {d['prediction'][-1]:.3f}{corrected} | {verdict} | {start} |"
                )
            lines += ["", f"Compression detected in {detected}/{len(trs)} runs.", ""]
    if not lines:
        raise ValueError("no GIB or IB trajectories in the records")
    return "\n".join(lines)

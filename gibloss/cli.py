"""The ``gibloss`` command line: plot and summarise monitor records.

Usage::

    gibloss plot RUN.jsonl [MORE.jsonl ...] -o plane.png [--kind gib|ib] [--layers output ...]
    gibloss summary RUN.jsonl [MORE.jsonl ...] [--estimator binning]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .phases import trajectory_compression
from .records import read_records, trajectories

__all__ = ["main", "summary_table"]


def _load_all(paths: Sequence[str]) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for p in paths:
        records.extend(read_records(p))
    if not any(r.get("kind") == "measurement" for r in records):
        raise ValueError(f"no measurement records in {', '.join(paths)}")
    return records


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


def _plot(args: argparse.Namespace) -> int:
    from .plotting import plot_information_plane

    records = _load_all(args.records)
    fig = plot_information_plane(
        records,
        kind=args.kind,
        normalize=not args.no_normalize,
        estimator=args.estimator,
        layers=args.layers,
        convention=args.convention,
    )
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=args.dpi)
    print(f"wrote {out}")
    return 0


def _summary(args: argparse.Namespace) -> int:
    records = _load_all(args.records)
    print(
        summary_table(records, estimator=args.estimator, layer=args.layer, threshold=args.threshold)
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``gibloss`` command."""
    from . import __version__

    parser = argparse.ArgumentParser(prog="gibloss", description="Plot and summarise GIB runs.")
    parser.add_argument("--version", action="version", version=f"gibloss {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("plot", help="draw information planes from monitor records")
    p.add_argument("records", nargs="+", help="JSON Lines record file(s)")
    p.add_argument("-o", "--output", required=True, help="output image (png, pdf, svg)")
    p.add_argument("--kind", choices=("gib", "ib"), default="gib", help="which plane (gib)")
    p.add_argument(
        "--estimator", default=None, help="estimator name in the records (default: the first)"
    )
    p.add_argument(
        "--layers", nargs="+", default=["output"], help="IB layers to draw (default: output)"
    )
    p.add_argument(
        "--convention", choices=("per_call", "run_range"), default="per_call",
        help="IB binning convention (per_call)",
    )
    p.add_argument(
        "--no-normalize", action="store_true",
        help="draw absolute bits instead of each run's min-max normalised values",
    )
    p.add_argument("--dpi", type=int, default=120, help="resolution of raster output (120)")
    p.set_defaults(func=_plot)
    s = sub.add_parser("summary", help="start, peak, end and compression per run")
    s.add_argument("records", nargs="+", help="JSON Lines record file(s)")
    s.add_argument(
        "--estimator", default=None, help="estimator name in the records (default: the first)"
    )
    s.add_argument("--layer", default="output", help="IB layer to summarise (output)")
    s.add_argument(
        "--threshold", type=float, default=0.1,
        help="smallest drop, as a fraction of the complexity's range, that counts (0.1)",
    )
    s.set_defaults(func=_summary)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (2 for bad input, with a one-line message)."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (FileNotFoundError, ValueError, TypeError) as err:
        print(f"gibloss {args.command}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `gibloss summary runs.jsonl | head`: the reader left
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes at exit
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

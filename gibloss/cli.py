"""The ``gibloss`` command line: plot and summarise monitor records.

Usage::

    gibloss plot RUN.jsonl [MORE.jsonl ...] -o plane.png [--kind gib|ib|split] [--layers ...]
        [--normalize]
    gibloss summary RUN.jsonl [MORE.jsonl ...] [--estimator binning]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .records import read_records
from .summary import summary_table

__all__ = ["main", "summary_table"]  # summary_table lives in gibloss.summary


def _load_all(paths: Sequence[str]) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for p in paths:
        records.extend(read_records(p))
    if not any(r.get("kind") == "measurement" for r in records):
        raise ValueError(f"no measurement records in {', '.join(paths)}")
    return records


def _plot(args: argparse.Namespace) -> int:
    from .plotting import plot_complexity_split, plot_information_plane

    records = _load_all(args.records)
    if args.kind == "split":
        fig = plot_complexity_split(records, estimator=args.estimator)
    else:
        fig = plot_information_plane(
            records,
            kind=args.kind,
            normalize=args.normalize,
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
    p.add_argument(
        "--kind", choices=("gib", "ib", "split"), default="gib",
        help="the GIB or IB plane, or the split of the GIB complexity over time (gib)",
    )
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
        "--normalize", action="store_true",
        help="min-max normalise each run's axes (the paper's convention) instead of bits",
    )
    p.add_argument(  # the default since 0.3; kept so that older commands still run
        "--no-normalize", action="store_true", help=argparse.SUPPRESS
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

"""Run summaries: per plane and run, where each term starts, peaks and ends, beside its shuffled
null, whether the complexity compressed, what the change was made of, and whether the estimate
can be read at all (the table ``gibloss summary`` prints)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .phases import trajectory_compression
from .records import estimator_entry, first_estimator, trajectories

__all__ = ["summary_table", "unreliable_reason"]

_CONTINUOUS = ("gaussian_copula", "gcmi", "kde", "ksg")
_TERM_NAMES = {
    "gib": {"whole": "I(X;Q)", "prediction": "I(Z;Y)"},
    "ib": {"complexity": "I(X;T)", "prediction": "I(T;Y)"},
}


def unreliable_reason(
    kind: str, estimator: str, trajectory: dict[str, np.ndarray], n_rows: int | None
) -> str | None:
    """Why a trajectory's estimates cannot be read as information, or None.

    * an information term (``I(X;Q)``, ``I(Z;Y)``, ``I(X;T)``, ``I(T;Y)``; not GIB's complexity,
      which is divided by ``beta``) above ``log2 n``, the most that ``n`` probe rows can tell
      (a plug-in estimate cannot exceed it; a larger one is the estimator's model speaking, not
      the data);
    * IB's ``I(X;T)`` with a continuous estimator: a network layer is a deterministic map of
      continuous inputs, whose true ``I(X;T)`` is infinite; the Gaussian-copula (or KDE, KSG)
      value measures the geometry of the fit, so its changes are not compression;
    * IB's ``I(T;Y)`` at 0 in every point with a continuous estimator: a Gaussian-copula estimate
      collapses to 0 when every class has at most ``d + 1`` rows for a ``d``-unit layer (each
      class covariance is shrunk to the same target).
    """
    continuous = estimator in _CONTINUOUS
    if n_rows:
        bound = math.log2(n_rows)
        # information terms only: GIB's complexity is divided by beta (and Eq. 17 sums N terms),
        # so its own bound is not log2 n; I(X;Q) is
        terms = ("complexity", "prediction") if kind == "ib" else ("whole", "prediction")
        for term in (t for t in terms if t in trajectory):
            top = float(np.max(trajectory[term]))
            if top > bound + 1e-6:
                return (
                    f"{_TERM_NAMES[kind].get(term, term)} reads {top:.2f} bits, above log2 n = "
                    f"{bound:.2f} bits, the most "
                    f"{n_rows} probe rows can tell"
                )
    if kind == "ib" and continuous:
        if float(np.max(np.abs(trajectory["prediction"]))) <= 1e-9:
            return (
                "I(T;Y) reads 0 at every point: a Gaussian-copula estimate collapses to 0 when "
                "every class has at most d + 1 rows for a d-unit layer"
            )
        return (
            "I(X;T) of a deterministic map of continuous inputs is infinite; the "
            f"{estimator} value reads the fit's geometry, not compression"
        )
    return None


def _has(
    records: list[dict[str, Any]], kind: str, convention: str, estimator: str | None
) -> bool:
    """Whether the records hold this plane (run-range IB: for this estimator; binning only)."""
    if kind == "ib" and convention == "run_range":
        rows = [r for r in records if r.get("kind") == "ib_run_range" and r.get("ib")]
        return bool(rows) and (
            estimator is None or any(estimator_entry(r["ib"], estimator) for r in rows)
        )
    return any(r.get("kind") == "measurement" and r.get(kind) for r in records)


def _probe_rows(records: list[dict[str, Any]]) -> int | None:
    sizes = {r.get("probe_size") for r in records if r.get("kind") == "header"}
    sizes.discard(None)
    return int(sizes.pop()) if len(sizes) == 1 else None


def summary_table(
    records: list[dict[str, Any]],
    *,
    estimator: str | None = None,
    layer: str = "output",
    threshold: float = 0.1,
    min_drop: float = 0.05,
) -> str:
    """A markdown table per plane and the split of each run's GIB complexity change.

    Per run: start, peak and end of each term, the end minus its shuffled-label null, and
    compression as :func:`gibloss.compression` detects it (peak after fitting, a drop of at least
    ``threshold`` of the complexity's range and at least ``min_drop`` bits), labelled
    "saturation" (the complexity fell with Q's entropy or with rising confidence) or
    "compression". A run whose estimates cannot be read (:func:`unreliable_reason`) says
    "unreliable: why" instead. Below each GIB table, the exact split of each run's change of the
    complexity into ``I(X;Q)`` and the synergy share (:mod:`gibloss.split`).

    Raises
    ------
    ValueError
        No GIB or IB records; a ``layer`` or ``estimator`` the records do not hold.
    """
    n_rows = _probe_rows(records)
    lines: list[str] = []
    for kind, conventions in (("gib", ("per_call",)), ("ib", ("per_call", "run_range"))):
        for conv in conventions:
            if not _has(records, kind, conv, estimator):
                continue
            trs = trajectories(records, kind, estimator=estimator, layer=layer, convention=conv)
            name = estimator or first_estimator(records, kind)
            title = f"GIB, estimator {name!r}" if kind == "gib" else (
                f"IB, estimator {name!r}, layer {layer!r}, {conv} binning"
            )
            xl, yl = ("complexity", "I(Z;Y)") if kind == "gib" else ("I(X;T)", "I(T;Y)")
            lines += [
                f"## {title}",
                "",
                f"Bits. {xl} and {yl}: start, peak, end, and end − shuffled null (what the end "
                "reads above an estimate without the relationship).",
                "",
                f"| run | points | {xl} start | peak | end | end − null | {yl} start | peak "
                "| end | end − null | compression | starts at |",
                "|---|---|---|---|---|---|---|---|---|---|---|---|",
            ]
            detected, splits = 0, []
            for run, d in trs.items():
                if d["time"].size < 2:
                    lines.append(
                        f"| {run} | {d['time'].size} |" + " — |" * 8 + " too short | — |"
                    )
                    continue
                s = trajectory_compression(d, threshold=threshold, min_drop=min_drop)
                start = "—" if s.start is None else f"{d['axis']} {s.start:g}"
                if "null_complexity" in d:
                    c_net = f"{s.end - d['null_complexity'][-1]:.3f}"
                    p_net = f"{d['prediction'][-1] - d['null_prediction'][-1]:.3f}"
                else:
                    c_net = p_net = "—"
                why = unreliable_reason(kind, name, d, n_rows)
                if why is not None:
                    verdict, start = f"unreliable: {why}", "—"
                elif s.compressed:
                    detected += 1
                    cause = f"{s.cause}: " if s.cause else ""
                    verdict = (
                        f"yes, {cause}drop of {s.drop:.3f} bits "
                        f"({100 * s.relative_drop:.0f} % of the range)"
                    )
                else:
                    verdict = "no"
                if "argmax_complexity" in d:  # the decision-coded reading of the same plane
                    a = d["argmax_complexity"]
                    verdict += f"; argmax-coded complexity {a[0]:.3f} → {a[-1]:.3f}"
                lines.append(
                    f"| {run} | {d['time'].size} | {s.first:.3f} | {s.peak:.3f} | {s.end:.3f} "
                    f"| {c_net} | {d['prediction'][0]:.3f} | {d['prediction'].max():.3f} "
                    f"| {d['prediction'][-1]:.3f} | {p_net} | {verdict} | {start} |"
                )
                if s.split is not None:
                    text = f"- {run}: {s.split.sentence()}"
                    if s.drop_split is not None:
                        text += f"; the drop from its peak: {s.drop_split.sentence()}"
                    splits.append(text)
            lines += ["", f"Compression detected in {detected}/{len(trs)} runs.", ""]
            if splits:
                lines += [
                    "What the complexity's change is made of (exact: C = ½ I(X;Q) (1 − s)/β, so "
                    "Δ ln C = Δ ln I(X;Q) + Δ ln(1 − s); s is the synergy share):",
                    "",
                    *splits,
                    "",
                ]
    if not lines:
        raise ValueError("no GIB or IB trajectories in the records")
    return "\n".join(lines)

"""Information-plane figures in the paper's style (matplotlib)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .phases import trajectory_compression
from .records import estimator_entry, first_estimator, read_records, trajectories

__all__ = ["plot_complexity_split", "plot_feature_terms", "plot_information_plane"]


def _load(records_or_path: Any) -> list[dict[str, Any]]:
    if isinstance(records_or_path, (str, os.PathLike)):
        return read_records(records_or_path)
    records = list(records_or_path)
    if records and isinstance(records[0], (str, os.PathLike)):  # several run files
        return [r for p in records for r in read_records(p)]
    return read_records(records)


#: Ranges below this many bits are drawn as constant when normalising: dividing by them would
#: blow rounding noise up to a whole axis (a 1e-15-bit range gave axes in units of 1e14).
NORM_TOL = 1e-3


def _norm(v: np.ndarray) -> np.ndarray:
    """Min-max normalised to [0, 1]; a trajectory whose range is below :data:`NORM_TOL` bits
    sits in the middle (0.5)."""
    span = v.max() - v.min()
    return (v - v.min()) / span if span > NORM_TOL else np.full_like(v, 0.5, dtype=float)


def _norm_like(v: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """``v`` on the axis that :func:`_norm` gives ``ref``."""
    span = ref.max() - ref.min()
    if span > NORM_TOL:
        return (v - ref.min()) / span
    return 0.5 + (v - ref.min())  # around a constant reference (at 0.5): offsets in bits


def _note(ax: Any, lines: list[str]) -> None:
    """Small notes in the panel's top-left corner, kept out of the layout (so a long note can
    neither run past the figure's layout nor collapse the axes)."""
    if not lines:
        return
    text = ax.text(
        0.02, 0.98, "\n".join(lines), transform=ax.transAxes, fontsize=6.5, va="top",
        color="0.25", wrap=True,
    )
    text.set_in_layout(False)


def _panel_grid(n: int, panel_size: float, extra_width: float) -> tuple[Figure, Any, int]:
    """A figure of ``n`` panels, at most 4 a row (``extra_width`` inches for a colour bar or a
    twin axis); the unused cells of the last row are hidden."""
    cols = min(n, 4)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(
        rows,
        cols,
        figsize=(panel_size * cols + extra_width, panel_size * rows + 0.3),
        squeeze=False,
        constrained_layout=True,
    )
    for k in range(n, rows * cols):
        axes[k // cols][k % cols].set_visible(False)
    return fig, axes, cols


def plot_information_plane(
    records_or_path: Any,
    kind: str = "gib",
    normalize: bool = False,
    *,
    estimator: str | None = None,
    layers: Sequence[str] = ("output",),
    convention: str = "per_call",
    runs: Iterable[str] | None = None,
    cmap: str = "viridis",
    panel_size: float = 3.2,
) -> Figure:
    """Information plane(s): x = complexity, y = prediction, colour = time, one panel per run.

    Axes are in bits. Where the records carry a shuffled-label null (the monitor's default), it
    is drawn as a dashed grey line in the same units: what the estimator reads at each point
    without the relationship, so the distance from it is what the data tell. GIB panels also
    draw the plane with Z coded by its argmax (dotted, where recorded), and mark a detected drop
    (:func:`gibloss.compression`, default thresholds) with an arrow from its peak to the end:
    red for ``"compression"``, orange for ``"saturation"``. Each panel's title names the run
    and the estimator.

    Parameters
    ----------
    records_or_path : str, Path, list of records, or list of paths
        Monitor records or the JSON Lines file(s) holding them.
    kind : {"gib", "ib"}
        GIB plane (complexity vs ``I(Z;Y)``) or IB plane (``I(X;T)`` vs ``I(T;Y)``).
    normalize : bool, default False
        Scale each axis of each trajectory to ``[0, 1]`` (the paper's convention), on request
        only: it hides how large a change is (a 0.004-bit change fills the axis). A range below
        :data:`NORM_TOL` bits is drawn as constant, with its value in a note; the null, which
        normalised axes cannot place, is given in the note too.
    estimator : str, optional
        Which estimator's terms (default: the first recorded).
    layers : sequence of str
        IB only: layers to draw (default the model output); one marker style per layer.
    convention : {"per_call", "run_range"}
        IB only: which binning convention.
    runs : iterable of str, optional
        Runs to draw (default all, in record order).
    cmap : str
        Colour map of time.
    panel_size : float
        Inches per panel.

    Returns
    -------
    matplotlib.figure.Figure
    """
    records = _load(records_or_path)
    layer_list = list(dict.fromkeys(layers)) if kind == "ib" else ["output"]
    per_layer = {
        layer: trajectories(records, kind, estimator=estimator, layer=layer, convention=convention)
        for layer in layer_list
    }
    est_name = estimator or first_estimator(records, kind)
    run_names = list(runs) if runs is not None else list(next(iter(per_layer.values())))
    if not run_names:
        raise ValueError("no runs to plot")
    n = len(run_names)
    fig, axes, cols = _panel_grid(n, panel_size, extra_width=0.8)
    all_t = np.concatenate(
        [tr[r]["time"] for tr in per_layer.values() for r in run_names if r in tr]
    )
    vmin, vmax = float(np.nanmin(all_t)), float(np.nanmax(all_t))
    if vmax <= vmin:
        vmax = vmin + 1.0
    markers = "o^sDv<>p*h"
    sc = None
    for k, run in enumerate(run_names):
        ax = axes[k // cols][k % cols]
        notes: list[str] = []
        for j, (layer, tr) in enumerate(per_layer.items()):
            if run not in tr:
                raise ValueError(f"run {run!r} not in the records")
            d = tr[run]
            xs, ys = d["complexity"], d["prediction"]
            null = (d["null_complexity"], d["null_prediction"]) if "null_complexity" in d else None
            tag = f"{layer}: " if kind == "ib" and len(layer_list) > 1 else ""
            if normalize:
                constant = [
                    f"{name} constant at {v[0]:.3f} bits"
                    for name, v in (("complexity", xs), ("prediction", ys))
                    if v.size and np.ptp(v) <= NORM_TOL
                ]
                if constant:  # normalising cannot show it: say so on the panel
                    notes.append(tag + "; ".join(constant))
                if null is not None:  # normalised axes cannot place it: give it in bits
                    notes.append(
                        f"{tag}null at end: {null[0][-1]:.3f}, {null[1][-1]:.3f} bits"
                    )
                    null = None
                xs, ys = _norm(xs), _norm(ys)
            if null is not None:
                ax.plot(*null, color="0.45", lw=0.9, ls="--", marker=".", ms=3, zorder=1,
                        label="shuffled null" if j == 0 else None)
            ax.plot(xs, ys, color="0.75", lw=0.8, zorder=1)
            if kind == "gib" and "argmax_complexity" in d:  # the decision-coded reading
                axs, ays = d["argmax_complexity"], d["argmax_prediction"]
                if normalize:
                    axs = _norm_like(axs, d["complexity"])
                    ays = _norm_like(ays, d["prediction"])
                ax.plot(axs, ays, color="tab:blue", lw=0.9, ls=":", marker="x", ms=3,
                        zorder=1, label="argmax coding")
            if kind == "gib" and d["time"].size >= 2:
                _mark_compression(ax, d, xs, ys)
            sc = ax.scatter(
                xs,
                ys,
                c=d["time"],
                cmap=cmap,
                vmin=vmin,
                vmax=vmax,
                s=22,
                marker=markers[j % len(markers)],
                zorder=2,
                label=layer if kind == "ib" and len(layer_list) > 1 else None,
            )
        _note(ax, notes)
        what = "GIB" if kind == "gib" else "IB"
        ax.set_title(f"{run}\n{what}, {est_name}", fontsize=9)
        xl = "complexity" if kind == "gib" else "I(X;T)"
        yl = "I(Z;Y)" if kind == "gib" else "I(T;Y)"
        unit = " (normalised)" if normalize else " (bits)"
        ax.set_xlabel(f"{what} {xl}{unit}", fontsize=9)
        ax.set_ylabel(f"{yl}{unit}", fontsize=9)
        if not normalize:
            for axis in (ax.xaxis, ax.yaxis):  # no offset notation: read the bits as they are
                axis.get_major_formatter().set_useOffset(False)
        if ax.get_legend_handles_labels()[1]:
            # below the panel: inside it, a legend hides the null (low) or the run (high)
            ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2,
                      frameon=False)
    axis = str(next(iter(next(iter(per_layer.values())).values()))["axis"])
    bar = fig.colorbar(sc, ax=axes.ravel().tolist(), label=axis)
    if np.allclose(all_t, np.round(all_t)):  # epochs and steps: whole-number ticks
        bar.locator = MaxNLocator(integer=True)
        bar.update_ticks()
    return fig


def plot_complexity_split(
    records_or_path: Any,
    *,
    estimator: str | None = None,
    runs: Iterable[str] | None = None,
    panel_size: float = 3.2,
) -> Figure:
    """What the GIB complexity is made of, over time: one panel per run.

    Left axis (bits): the complexity C and ``½ I(X;Q)``, whose ratio is ``1 - s`` (Eq. 5:
    ``C = ½ I(X;Q) (1 - s) / beta``); right axis: the synergy share ``s``. A C that falls with
    ``I(X;Q)`` at constant ``s`` lost information about Q (or Q lost entropy); one that falls
    with a rising ``s`` became more synergistic (:mod:`gibloss.split`).

    Parameters
    ----------
    records_or_path : str, Path, list of records, or list of paths
        Monitor records (GIB records of ``variant="synergy"``).
    estimator : str, optional
        Which estimator's terms (default: the first recorded).
    runs : iterable of str, optional
        Runs to draw (default all).
    panel_size : float
        Inches per panel.

    Returns
    -------
    matplotlib.figure.Figure
    """
    records = _load(records_or_path)
    trs = trajectories(records, "gib", estimator=estimator)
    names = list(runs) if runs is not None else list(trs)
    missing = [r for r in names if r not in trs or "synergy_share" not in trs[r]]
    if not names or missing:
        raise ValueError(
            f"no split to draw for runs {missing or names}: the records need I(X;Q) and the "
            "per-feature terms of Eq. 5 (variant='synergy') at every point"
        )
    est_name = estimator or first_estimator(records, "gib")
    fig, axes, cols = _panel_grid(len(names), panel_size, extra_width=0.6)
    for k, run in enumerate(names):
        d = trs[run]
        ax = axes[k // cols][k % cols]
        t = d["time"]
        ax.plot(t, d["complexity"], "o-", color="k", ms=3, label="complexity C")
        ax.plot(t, 0.5 * d["whole"], "s--", color="tab:blue", ms=3, label="½ I(X;Q)")
        ax.set_xlabel(str(d["axis"]), fontsize=9)
        ax.set_ylabel("bits", fontsize=9)
        ax.set_ylim(bottom=min(0.0, float(np.min(d["complexity"]))))
        twin = ax.twinx()
        twin.plot(t, d["synergy_share"], "^:", color="tab:red", ms=3, label="synergy share s")
        twin.set_ylabel("synergy share s", fontsize=9, color="tab:red")
        ax.set_title(f"{run}\nGIB split, {est_name}", fontsize=9)
        if np.allclose(t, np.round(t)):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        handles = ax.get_legend_handles_labels()
        extra = twin.get_legend_handles_labels()
        ax.legend(handles[0] + extra[0], handles[1] + extra[1], fontsize=7, loc="upper center",
                  bbox_to_anchor=(0.5, -0.2), ncol=3, frameon=False)
    return fig


_CAUSE_STYLE = {
    "compression": {"marker": "v", "color": "tab:red", "label": "drop: compression"},
    "saturation": {"marker": "s", "color": "tab:orange", "label": "drop: saturation"},
    None: {"marker": "v", "color": "0.3", "label": "drop (no diagnostics)"},
}


def _mark_compression(ax: Any, d: dict[str, np.ndarray], xs: np.ndarray, ys: np.ndarray) -> None:
    """Mark a detected drop from its peak to the end, styled by its cause."""
    s = trajectory_compression(d)
    if not s.compressed:
        return
    style = _CAUSE_STYLE[s.cause]
    i_peak = int(np.flatnonzero(d["time"] == s.start)[0]) if s.start is not None else 0
    ax.annotate(
        "",
        xy=(xs[-1], ys[-1]),
        xytext=(xs[i_peak], ys[i_peak]),
        arrowprops={"arrowstyle": "->", "color": style["color"], "lw": 1.2},
        zorder=3,
    )
    ax.scatter(
        [xs[i_peak]], [ys[i_peak]], marker=style["marker"], s=60, facecolors="none",
        edgecolors=style["color"], linewidths=1.5, zorder=4, label=style["label"],
    )


def plot_feature_terms(
    record_or_path: Any,
    *,
    estimator: str | None = None,
    index: int = -1,
) -> Figure:
    """Per-feature GIB terms of one measurement, and the synergy map.

    Left: ``I(X^i; Q)`` and ``I(X^{-i}; Q)`` per feature, with ``H(Q)`` (their ceiling) dashed.
    Middle: the synergy map ``II_i = I(X; Q) - I(X^{-i}; Q) - I(X^i; Q)`` (positive: feature
    ``i`` is synergistic with the rest; negative: redundant). Right: single against complement.

    Parameters
    ----------
    record_or_path : dict, list of records, str or Path
        A measurement record, or records / a file (``index`` picks the measurement).
    estimator : str, optional
        Which estimator's terms (default: the first recorded).
    index : int
        Which measurement when several are given (default the last).

    Returns
    -------
    matplotlib.figure.Figure
    """
    if isinstance(record_or_path, dict):
        record = record_or_path
    else:
        ms = [r for r in _load(record_or_path) if r.get("kind") == "measurement"]
        if not ms:
            raise ValueError("no measurement records found")
        record = ms[index]
    gibs = record.get("gib") or {}
    if not gibs:
        raise ValueError("the record has no GIB terms")
    name = estimator or next(iter(gibs))
    entry = estimator_entry(gibs, name)
    if entry is None:
        raise ValueError(f"estimator {name!r} not in the record; available: {sorted(gibs)}")
    gibs = {name: entry}
    single = np.asarray(gibs[name]["single"], dtype=float)
    comp = np.asarray(gibs[name]["complement"], dtype=float)
    if "interaction" in gibs[name]:
        inter = np.asarray(gibs[name]["interaction"], dtype=float)
    else:  # records written before the synergy map was stored
        inter = float(gibs[name]["whole"]) - comp - single if single.size > 1 else np.zeros(1)
    idx = np.arange(single.size)
    fig, (ax1, ax3, ax2) = plt.subplots(1, 3, figsize=(14, 3.6), constrained_layout=True)
    width = 0.4
    ax1.bar(idx - width / 2, single, width, label="I(X^i; Q)")
    ax1.bar(idx + width / 2, comp, width, label="I(X^-i; Q)")
    ax1.set_xlabel("feature i")
    ax1.set_ylabel("bits")
    ax1.legend(fontsize=8)
    h_q = gibs[name].get("diagnostics", {}).get("h_q")
    if h_q is not None:
        ax1.axhline(h_q, color="k", ls="--", lw=0.8)
        ax1.text(idx[-1], h_q, " H(Q)", va="bottom", ha="right", fontsize=8)
    ax3.bar(idx, inter, color=np.where(inter >= 0, "tab:red", "tab:blue"))
    ax3.axhline(0.0, color="k", lw=0.6)
    ax3.set_xlabel("feature i")
    ax3.set_ylabel("II_i (bits)")
    ax3.set_title("synergy map: > 0 synergy, < 0 redundancy", fontsize=9)
    ax2.scatter(single, comp, c=idx, cmap="viridis", s=25)
    ax2.set_xlabel("single I(X^i; Q) (bits)")
    ax2.set_ylabel("complement I(X^-i; Q) (bits)")
    when = record.get("epoch", record.get("step"))
    fig.suptitle(f"{record.get('run', '')} {name} per-feature GIB terms (t = {when})", fontsize=10)
    return fig

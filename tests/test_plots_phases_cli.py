"""Plots render, the compression measure works on synthetic trajectories, the CLI behaves."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

import gibloss
import gibloss.records
from gibloss.cli import main
from gibloss.records import append_record
from gibloss.summary import summary_table


def _fake_run(path: Path, run: str, complexity, prediction) -> None:
    append_record(path, {"kind": "header", "run": run})
    for epoch, (c, p) in enumerate(zip(complexity, prediction, strict=True)):
        append_record(
            path,
            {
                "kind": "measurement",
                "run": run,
                "epoch": epoch,
                "step": None,
                "gib": {
                    "binning": {
                        "complexity": c,
                        "prediction": p,
                        "objective": p - c,
                        "single": [c, c / 2],
                        "complement": [c * 2, c],
                        "whole": 3 * c,
                        "diagnostics": {"h_q": 3.0},
                    }
                },
                "ib": {"binning": {"output": {"complexity": 2 * c, "prediction": p}}},
            },
        )


COMPRESS = ([0.1, 0.6, 1.0, 1.2, 1.0, 0.8, 0.7], [0.0, 0.7, 0.95, 1.0, 1.02, 1.03, 1.03])
NO_COMPRESS = ([0.1, 0.6, 1.0, 1.1, 1.15, 1.2, 1.2], [0.0, 0.7, 0.95, 1.0, 1.02, 1.03, 1.03])


def _not_blank(png: Path) -> None:
    img = mpimg.imread(png)
    assert img.ndim == 3 and img.shape[0] > 100
    assert img[..., :3].std() > 0.05  # not a single flat colour


def test_compression_detects_and_rejects() -> None:
    s = gibloss.compression(*COMPRESS)
    assert s.compressed and s.start == 3.0 and s.drop == pytest.approx(0.5)
    assert s.fit_time == 2.0
    n = gibloss.compression(*NO_COMPRESS)
    assert not n.compressed and n.start is None
    # a tiny wobble of a saturated term is not compression, however large relative to its range
    flat = gibloss.compression([10.81, 10.80, 10.81, 10.79], [1, 2, 3, 3])
    assert not flat.compressed
    # a dip that recovers by the end is not compression
    dip = gibloss.compression([0.1, 1.0, 0.5, 1.0], [0, 1, 1, 1])
    assert not dip.compressed
    with pytest.raises(ValueError, match="same length"):
        gibloss.compression([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="finite"):
        gibloss.compression([1, np.nan], [1, 2])


def test_plots_render_to_png(tmp_path: Path) -> None:
    path = tmp_path / "runs.jsonl"
    _fake_run(path, "seed0", *COMPRESS)
    _fake_run(path, "seed1", *NO_COMPRESS)
    for kind in ("gib", "ib"):
        fig = gibloss.plot_information_plane(path, kind=kind)
        assert len([a for a in fig.axes if a.get_visible()]) == 3  # two panels + colour bar
        out = tmp_path / f"{kind}.png"
        fig.savefig(out)
        _not_blank(out)
    fig = gibloss.plot_feature_terms(path)
    assert any(ax.get_ylabel() == "II_i (bits)" for ax in fig.axes)  # the synergy map panel
    out = tmp_path / "features.png"
    fig.savefig(out)
    _not_blank(out)


def test_plot_real_monitor_output(tmp_path: Path) -> None:
    import torch

    from gibloss._recipes.models import mlp

    torch.manual_seed(0)
    model = mlp((5, 6, 3), "relu")
    x, y = torch.randn(120, 5), torch.randint(0, 3, (120,))
    path = tmp_path / "m.jsonl"
    with gibloss.InformationPlaneMonitor(model, (x, y), path=path, bins=8) as mon:
        for e in range(3):
            mon.measure(epoch=e)
    fig = gibloss.plot_information_plane(
        path, kind="ib", layers=["0", "output"], convention="run_range"
    )
    fig.savefig(tmp_path / "rr.png")
    _not_blank(tmp_path / "rr.png")


def test_cli_plot_and_summary(tmp_path: Path, capsys) -> None:
    path = tmp_path / "runs.jsonl"
    _fake_run(path, "seed0", *COMPRESS)
    _fake_run(path, "seed1", *NO_COMPRESS)
    out = tmp_path / "plane.png"
    assert main(["plot", str(path), "-o", str(out), "--kind", "ib"]) == 0
    _not_blank(out)
    assert main(["summary", str(path)]) == 0
    text = capsys.readouterr().out
    assert "| seed0 |" in text and "yes, drop of " in text and "% of the range)" in text
    assert "Compression detected in 1/2 runs." in text


def test_cli_subprocess_entry_point_and_bad_input(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("gibloss")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "gibloss.cli"]
    missing = subprocess.run(
        cmd + ["summary", str(tmp_path / "none.jsonl")], capture_output=True, text=True
    )
    assert missing.returncode == 2 and "no such record file" in missing.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text("garbage\n{}\n")
    r = subprocess.run(
        cmd + ["plot", str(bad), "-o", str(tmp_path / "x.png")], capture_output=True, text=True
    )
    assert r.returncode == 2 and "bad.jsonl:1" in r.stderr
    empty = tmp_path / "empty.jsonl"
    append_record(empty, {"kind": "header", "run": "r"})
    r = subprocess.run(cmd + ["summary", str(empty)], capture_output=True, text=True)
    assert r.returncode == 2 and "no measurement records" in r.stderr
    good = tmp_path / "good.jsonl"
    _fake_run(good, "s", *COMPRESS)
    r = subprocess.run(cmd + ["summary", str(good)], capture_output=True, text=True)
    assert r.returncode == 0 and "## GIB, estimator 'binning'" in r.stdout


# --- the cause of a drop: saturation or compression -----------------------------------------


def _plane(x, logits, y) -> dict:
    res = gibloss.gib(x, logits, y, estimator="binning", bins=10)
    arg = gibloss.gib(x, logits, y, estimator="binning", bins=10, z_code="argmax")
    return {
        "c": res.complexity,
        "p": res.prediction,
        "h_q": res.diagnostics["h_q"],
        "max_p": res.diagnostics["mean_max_p"],
        "argmax": arg.complexity,
    }


def _verdict(points: list[dict]):
    return gibloss.compression(
        [q["c"] for q in points],
        [q["p"] for q in points],
        h_q=[q["h_q"] for q in points],
        max_p=[q["max_p"] for q in points],
        argmax_complexity=[q["argmax"] for q in points],
    )


def test_growing_last_layer_scale_reads_saturation() -> None:
    # the decisions are fixed; only the scale of the logits grows, as when the last layer's
    # weights grow after the fit: the probs-coded complexity falls as the softmax saturates
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 4))
    y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0)
    base = np.column_stack([-x[:, 0] - x[:, 1], x[:, 0] - x[:, 1], x[:, 0] + x[:, 1]])
    points = [_plane(x, base * s, y) for s in (0.5, 1, 2, 4, 8, 16, 32, 64)]
    argmax = [q["argmax"] for q in points]
    assert max(argmax) - min(argmax) < 1e-9  # the decisions never changed
    s = _verdict(points)
    assert s.compressed and s.cause == "saturation", s


def test_a_real_drop_reads_compression() -> None:
    # the outputs (and so Q, its entropy and the confidence) are fixed; the features lose the
    # information they carried about Q: the complexity really falls
    rng = np.random.default_rng(1)
    n = 2000
    y = rng.integers(0, 3, n)
    logits = np.eye(3)[y] * 3.0 + rng.normal(size=(n, 3))
    signal = np.eye(3)[y] @ rng.normal(size=(3, 4))
    noise = rng.normal(size=(n, 4))
    mixes = (0.0, 0.2, 0.5, 1.0, 2.0, 4.0, 8.0)
    points = [_plane(signal + m * noise, logits, y) for m in mixes]
    h = [q["h_q"] for q in points]
    assert max(h) - min(h) < 1e-9
    s = _verdict(points)
    assert s.compressed and s.cause == "compression", s
    # without diagnostics there is no cause
    assert gibloss.compression([q["c"] for q in points], [q["p"] for q in points]).cause is None


def test_monitor_reads_a_growing_last_layer_as_saturation(tmp_path: Path) -> None:
    # end to end: the monitor records the argmax reading by default, the summary and the plot
    # use it; only the last layer's scale grows, so the decisions never change
    torch.manual_seed(0)
    x = torch.randn(600, 4)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
    with torch.no_grad():  # a classifier that already decides well
        w = torch.tensor([[-1.0, -1.0, 0, 0], [1.0, -1.0, 0, 0], [1.0, 1.0, 0, 0]])
        model[0].weight.zero_()
        model[0].weight[:4].copy_(torch.eye(4) * 0.3)
        model[0].bias.zero_()
        model[2].weight.zero_()
        model[2].bias.zero_()
        model[2].weight[:, :4].copy_(w)
    path = tmp_path / "m.jsonl"
    with gibloss.InformationPlaneMonitor(model, (x, y), path=path, bins=10) as mon:
        for epoch in range(8):
            rec = mon.measure(epoch=epoch)
            with torch.no_grad():
                model[2].weight.mul_(2.0)
    argmax = rec["gib"]["binning"]["argmax"]
    assert set(argmax) == {"prediction", "complexity", "h_q", "n_z_codes", "null"}
    tr = gibloss.records.trajectories(gibloss.read_records(path))["run"]
    assert np.ptp(tr["argmax_complexity"]) < 1e-9  # the decisions never changed
    assert tr["complexity"][0] - tr["complexity"][-1] > 0.5  # the probs coding fell
    text = summary_table(gibloss.read_records(path))
    gib_row = text.split("## IB")[0]
    assert "yes, saturation: drop of" in gib_row, gib_row
    assert "argmax-coded complexity" in gib_row
    fig = gibloss.plot_information_plane(path)
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert "drop: saturation" in labels and "argmax coding" in labels, labels
    plt.close(fig)


def test_cli_version_help_and_a_closed_pipe(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("gibloss")
    r = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == f"gibloss {gibloss.__version__}"
    r = subprocess.run([str(exe), "plot", "--help"], capture_output=True, text=True, timeout=120)
    assert "--normalize" in r.stdout and "instead of bits" in r.stdout
    assert "IB binning convention" in r.stdout
    path = tmp_path / "runs.jsonl"
    for i in range(400):  # a summary long enough to outlive the pipe's buffer
        _fake_run(path, f"seed{i}", *COMPRESS)
    r = subprocess.run(
        f"'{exe}' summary '{path}' | head -n 1", shell=True, capture_output=True, text=True,
        timeout=300,
    )
    assert r.returncode == 0
    assert r.stdout.startswith("## GIB")
    assert "Traceback" not in r.stderr and "BrokenPipe" not in r.stderr, r.stderr


def test_import_leaves_the_users_backend_and_figures_alone() -> None:
    # a fresh interpreter: pyplot first with its own backend and an open figure, then gibloss
    code = (
        "import matplotlib; matplotlib.use('svg'); import matplotlib.pyplot as plt; "
        "fig = plt.figure(); import gibloss; "
        "print(matplotlib.get_backend(), plt.fignum_exists(fig.number))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["svg", "True"]


def test_records_of_0_1_read_under_either_gaussian_copula_name() -> None:
    from gibloss.records import estimator_entry

    old_record = {"gcmi": {"complexity": 1.0}}
    new_record = {"gaussian_copula": {"complexity": 2.0}}
    assert estimator_entry(old_record, "gaussian_copula") == {"complexity": 1.0}
    assert estimator_entry(new_record, "gcmi") == {"complexity": 2.0}
    assert estimator_entry(new_record, "binning") is None


def test_a_run_that_never_moves_is_drawn_in_the_middle_and_labelled(tmp_path) -> None:
    torch.manual_seed(0)
    x, y = torch.randn(80, 3), torch.randint(0, 2, (80,))
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    path = tmp_path / "m.jsonl"
    with gibloss.InformationPlaneMonitor(model, (x, y), path=path, bins=5, null=0) as mon:
        for epoch in range(3):  # no training: every point is the same
            mon.measure(epoch=epoch)
    fig = gibloss.plot_information_plane(path, kind="gib", normalize=True)
    ax = fig.axes[0]
    offsets = ax.collections[0].get_offsets()
    np.testing.assert_allclose(offsets, 0.5)
    texts = [t.get_text() for t in ax.texts]
    assert any("complexity constant at" in t and "prediction constant at" in t for t in texts)
    absolute = gibloss.plot_information_plane(path, kind="gib").axes[0]  # bits by default
    value = gibloss.read_records(path)[1]["gib"]["binning"]["complexity"]
    np.testing.assert_allclose(absolute.collections[0].get_offsets()[:, 0], value)


def _run_with_null(path: Path, run: str, prediction, null_complexity: float) -> None:
    """A GIB run whose complexity moves by 0.004 bits and whose null sits far below it."""
    append_record(path, {"kind": "header", "run": run, "probe_size": 450})
    for epoch, p in enumerate(prediction):
        c = 0.250 + 0.001 * epoch
        append_record(
            path,
            {
                "kind": "measurement",
                "run": run,
                "epoch": epoch,
                "gib": {
                    "gaussian_copula": {
                        "complexity": c,
                        "prediction": p,
                        "single": [c, c],
                        "complement": [c, c],
                        "whole": 2 * c,
                        "diagnostics": {"h_q": 3.0},
                        "null": {"complexity": null_complexity, "prediction": 0.01},
                    }
                },
            },
        )


def test_planes_are_drawn_in_bits_with_the_null_in_the_same_units(tmp_path) -> None:
    path = tmp_path / "m.jsonl"
    # the prediction is constant up to rounding (a 1e-15 range), the null far from the run
    _run_with_null(path, "far-null", [3.3 + 1e-15 * (i % 2) for i in range(5)], 0.02)
    ax = gibloss.plot_information_plane(path).axes[0]
    assert "gaussian_copula" in ax.get_title() and "far-null" in ax.get_title()
    lo, hi = ax.get_xlim()
    assert lo < 0.02 and 0.254 < hi < 0.5  # the null and the run, in bits
    lo, hi = ax.get_ylim()
    assert lo < 0.01 and 3.3 < hi < 4.0
    assert "(bits)" in ax.get_xlabel()
    # normalised on request: no division by the 1e-15 range, the null given in a note
    ax = gibloss.plot_information_plane(path, normalize=True).axes[0]
    lo, hi = ax.get_ylim()
    assert -1.0 < lo and hi < 2.0, (lo, hi)
    lo, hi = ax.get_xlim()
    assert -1.0 < lo and hi < 2.0, (lo, hi)
    texts = " ".join(t.get_text() for t in ax.texts)
    assert "prediction constant at 3.300 bits" in texts and "null at end: 0.020" in texts


def test_long_notes_do_not_collapse_the_layout(tmp_path) -> None:
    import warnings

    path = tmp_path / "m.jsonl"
    for run in ("a run with a rather long name", "b"):
        _run_with_null(path, run, [3.3] * 4, 0.02)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # "... collapsed to zero" is a UserWarning
        fig = gibloss.plot_information_plane(path, normalize=True)
        fig.savefig(tmp_path / "p.png", dpi=60)
    _not_blank(tmp_path / "p.png")


def test_summary_splits_the_change_and_flags_values_above_their_bound(tmp_path) -> None:
    path = tmp_path / "m.jsonl"
    _fake_run(path, "seed0", *COMPRESS)  # whole = 3 C, single and complement given
    text = summary_table(gibloss.read_records(path))
    assert "What the complexity's change is made of" in text
    assert "- seed0: complexity 0.1 → 0.7 bits:" in text and "% from I(X;Q)" in text
    assert "the drop from its peak: complexity 1.2 → 0.7 bits" in text
    # an estimate above log2 n is flagged, not read as compression
    far = tmp_path / "far.jsonl"
    append_record(far, {"kind": "header", "run": "r", "probe_size": 8})  # log2 8 = 3 bits
    for epoch, c in enumerate([1.0, 5.0, 6.0, 4.0]):
        append_record(
            far,
            {
                "kind": "measurement",
                "run": "r",
                "epoch": epoch,
                "ib": {"gaussian_copula": {"output": {"complexity": c, "prediction": 0.0}}},
            },
        )
    text = summary_table(gibloss.read_records(far))
    assert "unreliable: I(X;T) reads 6.00 bits, above log2 n = 3.00 bits" in text
    # GIB's complexity is divided by beta: a small beta puts it above log2 n, which is no flag
    small_beta = tmp_path / "beta.jsonl"
    append_record(small_beta, {"kind": "header", "run": "r", "probe_size": 8})
    for epoch, c in enumerate([10.0, 12.0]):  # I(X;Q) = 1 bit, beta = 0.05
        append_record(small_beta, {"kind": "measurement", "run": "r", "epoch": epoch, "gib": {
            "binning": {"complexity": c, "prediction": 1.0, "whole": 1.0, "single": [0.5],
                        "complement": [0.0], "settings": {"beta": 0.05}}}})
    assert "unreliable" not in summary_table(gibloss.read_records(small_beta))
    with pytest.raises(ValueError, match="layer 'hidden' not in the IB records"):
        summary_table(gibloss.read_records(far), layer="hidden")
    for epoch in range(2):
        append_record(
            path,
            {
                "kind": "ib_run_range",
                "run": "seed0",
                "epoch": epoch,
                "ib": {"binning": {"output": {"complexity": 1.0, "prediction": 0.5}}},
            },
        )
    with pytest.raises(ValueError, match="run_range IB records hold binning only"):
        gibloss.plot_information_plane(path, kind="ib", convention="run_range",
                                       estimator="gaussian_copula")


def test_the_split_is_drawn_over_time_and_from_the_cli(tmp_path) -> None:
    path = tmp_path / "m.jsonl"
    _fake_run(path, "seed0", *COMPRESS)
    fig = gibloss.plot_complexity_split(path)
    ax = fig.axes[0]
    c_line, half_line = ax.get_lines()[:2]
    np.testing.assert_allclose(c_line.get_ydata(), COMPRESS[0])
    np.testing.assert_allclose(half_line.get_ydata(), 1.5 * np.array(COMPRESS[0]))  # whole = 3C
    assert "binning" in ax.get_title()
    plt.close(fig)
    assert main(["plot", str(path), "-o", str(tmp_path / "s.png"), "--kind", "split"]) == 0
    _not_blank(tmp_path / "s.png")

"""End-to-end recipe runs (marker ``slow``; ``make test`` runs them in their quick setting)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import gibloss

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import two_process_launcher  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "GIBLOSS_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1"}

# recipe: extra flags that keep the smoke run short (on top of --quick)
SMOKE = {
    "synergy_noise": ["--n-max", "6", "--samples", "20000"],
    "activations": ["--activations", "tanh", "relu", "--epochs", "20", "--measure-every", "5"],
    "simple_functions": [
        "--functions",
        "addition",
        "multiplication",
        "--epochs",
        "100",
        "--measure-every",
        "20",
    ],
    "adversarial_mnist": ["--eps", "0.01", "1.0", "--epochs", "6", "--measure-every", "2"],
    "resnet_cifar10": ["--epochs", "2", "--n-train", "400", "--probe-size", "200"],
    "augmentation_synergy": ["--depths", "8", "14", "20", "--epochs", "1", "--n-train", "400"],
    "bert_agnews": ["--n-train", "300", "--epochs", "1"],
}


def _run(
    recipe: str,
    out: Path,
    *extra: str,
    launcher: list[str] | None = None,
    check: bool = True,
    interrupt_after: int | None = None,
) -> subprocess.CompletedProcess:
    env = ENV
    runner: list[str] = []
    if interrupt_after is not None:  # die like a killed job after that many epochs
        env = {**ENV, "GIBLOSS_TEST_INTERRUPT_AFTER": str(interrupt_after)}
        runner = [str(ROOT / "tests" / "interrupting_runner.py")]
    cmd = (launcher or [sys.executable]) + runner + [
        str(ROOT / "recipes" / f"{recipe}.py"),
        "--quick",
        "--output-dir",
        str(out),
        *extra,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)
    if check:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.mark.slow
@pytest.mark.parametrize("recipe", sorted(SMOKE))
def test_recipe_quick_smoke(recipe: str, tmp_path: Path) -> None:
    out = tmp_path / recipe
    _run(recipe, out, *SMOKE[recipe])
    config = json.loads((out / "config.json").read_text())
    assert config["quick"] is True
    summary = (out / "summary.md").read_text()
    assert "## The paper's claim" in summary and "## What this run shows" in summary
    assert list(out.glob("*.png")), "no figure written"
    records = gibloss.read_records(out / "metrics.jsonl")
    assert records
    if recipe != "synergy_noise":
        assert any(r["kind"] == "measurement" for r in records)
    if recipe in (
        "activations",
        "adversarial_mnist",
        "resnet_cifar10",
        "bert_agnews",
        "augmentation_synergy",
    ):
        assert "STAND-IN" in summary  # the offline default says so


def _final(path: Path) -> dict:
    recs = gibloss.read_records(path)
    last = {}
    for r in recs:
        if r["kind"] in ("measurement", "ib_run_range"):
            last[(r["kind"], r["run"], r["index"])] = r
    return {
        k: (v.get("gib"), v.get("ib"), v.get("accuracy"), v.get("loss")) for k, v in last.items()
    }


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_final_metrics(tmp_path: Path) -> None:
    flags = ["--activations", "tanh", "--seeds", "0", "3", "--epochs", "12", "--measure-every", "3"]
    full = tmp_path / "full"
    _run("activations", full, *flags)
    part = tmp_path / "part"
    killed = _run("activations", part, *flags, check=False, interrupt_after=17)
    assert killed.returncode == 137  # died like a killed job, mid-way through the second seed
    assert not (part / "summary.md").exists()
    _run("activations", part, *flags, "--resume")
    assert _final(part / "metrics.jsonl") == _final(full / "metrics.jsonl")
    # no duplicated measurements after the resume
    recs = [r for r in gibloss.read_records(part / "metrics.jsonl") if r["kind"] == "measurement"]
    keys = [(r["run"], r["index"]) for r in recs]
    assert len(keys) == len(set(keys))


@pytest.mark.slow
def test_recipe_under_two_processes(tmp_path: Path) -> None:
    launcher = two_process_launcher()
    out = tmp_path / "ddp"
    proc = _run(
        "adversarial_mnist",
        out,
        "--eps",
        "0.1",
        "--epochs",
        "3",
        "--measure-every",
        "1",
        "--cpu",
        launcher=launcher,
    )
    assert "processes 2" in (out / "summary.md").read_text()
    recs = gibloss.read_records(out / "metrics.jsonl")
    assert [r["kind"] for r in recs].count("header") == 1  # one writer
    assert [r["epoch"] for r in recs if r["kind"] == "measurement"] == [0, 1, 2]
    del proc


@pytest.mark.slow
def test_regularised_vs_plain_cifar10_path(tmp_path: Path) -> None:
    out = tmp_path / "rvp-cifar"
    _run(
        "regularised_vs_plain",
        out,
        "--dataset",
        "cifar10",
        "--settings",
        "plain",
        "gaussian_copula:1.0",
        "--seeds",
        "0",
        "--epochs",
        "1",
    )
    assert json.loads((out / "config.json").read_text())["dataset"] == "cifar10"
    assert sorted(p.name for p in (out / "models").iterdir()) == [
        "gaussian_copula-1.0_seed0.pt",
        "plain_seed0.pt",
    ]
    assert "STAND-IN: digit-derived 3x32x32" in (out / "summary.md").read_text()


def test_regularised_vs_plain_records_the_optimiser_that_trains() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "rvp", ROOT / "recipes" / "regularised_vs_plain.py"
    )
    rvp = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rvp)  # type: ignore[union-attr]
    cifar = {**rvp.PAPER, "dataset": "cifar10"}
    rvp.resolve_optimizer(cifar)
    assert cifar["lr"] == 0.1 and cifar["optimizer"].startswith("sgd")
    mnist = dict(rvp.PAPER)
    rvp.resolve_optimizer(mnist)
    assert mnist["lr"] == 1e-3 and mnist["optimizer"] == "adam"


@pytest.mark.slow
def test_canonical_recipe_resumes_from_accelerate_state(tmp_path: Path) -> None:
    """regularised_vs_plain writes its loop out and checkpoints with accelerator.save_state."""
    import torch

    flags = ["--settings", "plain", "gaussian_copula:1.0", "--seeds", "0", "--epochs", "4"]
    full = tmp_path / "full"
    _run("regularised_vs_plain", full, *flags)
    ckpt = full / "checkpoints" / "plain_seed0"
    assert (ckpt / "model.safetensors").exists() and (ckpt / "random_states_0.pkl").exists()
    assert json.loads((ckpt / "progress.json").read_text())["done"] is True
    part = tmp_path / "part"
    killed = _run("regularised_vs_plain", part, *flags, check=False, interrupt_after=6)
    assert killed.returncode == 137  # mid-way through the second setting
    _run("regularised_vs_plain", part, *flags, "--resume")
    assert _final(part / "metrics.jsonl") == _final(full / "metrics.jsonl")
    for name in ("plain_seed0.pt", "gaussian_copula-1.0_seed0.pt"):
        a = torch.load(full / "models" / name)
        b = torch.load(part / "models" / name)
        assert all(torch.equal(a[k], b[k]) for k in a), name


def test_a_recipe_clears_old_records_in_start_only_and_never_when_resuming(
    tmp_path: Path,
) -> None:
    from gibloss._recipes.experiment import Recipe, recipe_parser

    old = {"metrics.jsonl": "{}\n", "checkpoints/run0/progress.json": "{}", "notes.txt": "mine"}
    for name, text in old.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    for resume in (["--resume"], []):
        args = recipe_parser("t").parse_args(["--output-dir", str(tmp_path), "--cpu", *resume])
        recipe = Recipe("t", args, {"epochs": 1}, {})
        assert all((tmp_path / name).exists() for name in old)  # the constructor deletes nothing
        recipe.start()
        kept = {name for name in old if (tmp_path / name).exists()}
        assert kept == (set(old) if resume else {"notes.txt"})
        assert json.loads((tmp_path / "config.json").read_text())["epochs"] == 1


def test_a_checkpoint_resumes_only_under_the_process_count_that_wrote_it(tmp_path: Path) -> None:
    """Accelerate saves one RNG state per process: another count is refused, not half-loaded."""
    from gibloss._recipes.experiment import Recipe, recipe_parser

    args = recipe_parser("t").parse_args(["--output-dir", str(tmp_path), "--resume", "--cpu"])
    recipe = Recipe("t", args, {"epochs": 1}, {})
    ckpt = recipe.checkpoint_dir("run0")
    ckpt.mkdir(parents=True)
    for rank in (0, 1):  # written by two processes
        (ckpt / f"random_states_{rank}.pkl").write_bytes(b"")
    (ckpt / "progress.json").write_text('{"epoch": 0, "metrics_bytes": 0, "done": false}')
    with pytest.raises(ValueError, match="written by 2 process"):
        recipe.load_checkpoint("run0")
    assert recipe.load_checkpoint("other") is None  # no checkpoint: start afresh


@pytest.mark.slow
def test_canonical_recipe_resumes_under_two_processes(tmp_path: Path) -> None:
    """Two processes save one RNG state each and the loss memory once; --resume maps it back."""
    import torch

    launcher = two_process_launcher()
    flags = ["--settings", "gaussian_copula:1.0", "--seeds", "0", "--epochs", "2", "--cpu"]
    out = tmp_path / "ddp"
    _run("regularised_vs_plain", out, *flags, launcher=launcher)
    ckpt = out / "checkpoints" / "gaussian_copula-1.0_seed0"
    assert sorted(p.name for p in ckpt.glob("random_states_*.pkl")) == [
        "random_states_0.pkl",
        "random_states_1.pkl",
    ]
    model = torch.load(out / "models" / "gaussian_copula-1.0_seed0.pt")
    proc = _run("regularised_vs_plain", out, *flags, "--resume", launcher=launcher)
    assert "finished earlier, skipped" in proc.stdout
    again = torch.load(out / "models" / "gaussian_copula-1.0_seed0.pt")
    assert all(torch.equal(model[k], again[k]) for k in model)
    recs = [r for r in gibloss.read_records(out / "metrics.jsonl") if r["kind"] == "measurement"]
    assert [r["epoch"] for r in recs] == [0, 1]  # nothing measured twice

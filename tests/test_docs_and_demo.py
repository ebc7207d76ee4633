"""The documentation cannot rot: every code block in README.md and docs/ runs here.

Python blocks are executed; every line of a bash block is run as a shell command (with the
project's virtual environment first on PATH), from the repository root, after the page's python
blocks. The one exception is ``make test``, which is what CI runs and would recurse here.

A python block followed by ``<!-- expected output -->`` and a ``text`` block quotes what it
prints: the test compares the printed lines with the quoted ones, so a number on a page cannot
drift from what the current code prints.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_script

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["README.md"] + sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").rglob("*.md"))
CODE_PAGES = [p for p in PAGES if re.search(r"```(python|bash)\n", (ROOT / p).read_text())]
# CI's own command, and the demo (4.5 min), which test_make_demo_runs_small runs small
NOT_RUN = {"make test", "make demo"}
_ALREADY_RUN: set[str] = set()  # the same command on two pages runs once


def _blocks(path: Path, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", path.read_text(), flags=re.S)


_EXPECTED = re.compile(
    r"```python\n(.*?)```\s*<!-- expected output -->\s*```text\n(.*?)```", flags=re.S
)


def _expected_outputs(path: Path) -> dict[str, str]:
    """``{python block: the output the page quotes for it}``."""
    return dict(_EXPECTED.findall(path.read_text()))


def test_every_page_is_covered() -> None:
    assert "docs/index.md" in PAGES and "docs/recipes/activations.md" in PAGES
    fences = {
        m
        for p in PAGES
        for m in re.findall(r"```(\w*)\n.*?```", (ROOT / p).read_text(), flags=re.S)
    }
    # `text` marks non-code (a folder listing); anything else would go unexecuted
    assert fences <= {"python", "bash", "text"}, f"unexpected code fences {fences}"


@pytest.fixture(scope="module")
def docs_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder that looks like the repository (links to its files) and keeps the outputs.

    The pages' commands write to ``runs/...`` relative to where they run; running them here
    keeps the checkout untouched, and a second test session starts from nothing.
    """
    work = tmp_path_factory.mktemp("docs-work")
    for entry in ROOT.iterdir():
        if entry.name not in (".git", "runs", "site"):
            (work / entry.name).symlink_to(entry)
    return work


@pytest.mark.slow
@pytest.mark.parametrize("page", CODE_PAGES)
def test_page_code_blocks_run(page: str, monkeypatch, docs_workdir: Path) -> None:
    path = ROOT / page
    py_blocks, sh_blocks = _blocks(path, "python"), _blocks(path, "bash")
    monkeypatch.chdir(docs_workdir)  # outputs go to a temporary runs/
    expected = _expected_outputs(path)
    for block in py_blocks:
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(block, page, "exec"), {"__name__": "__docs__"})
        if block in expected:
            got = [line.rstrip() for line in printed.getvalue().strip().splitlines()]
            want = [line.rstrip() for line in expected[block].strip().splitlines()]
            assert got == want, f"{page}: a block prints\n{printed.getvalue()}"
    env = {
        **os.environ,
        "GIBLOSS_NO_PROGRESS": "1",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    for block in sh_blocks:
        for line in block.strip().splitlines():
            cmd = line.split("#")[0].strip()
            if not cmd or cmd in NOT_RUN or cmd in _ALREADY_RUN:
                continue
            _ALREADY_RUN.add(cmd)
            r = subprocess.run(
                ["bash", "-c", cmd],
                cwd=docs_workdir,
                env=env,
                capture_output=True,
                text=True,
                timeout=900,
            )
            assert r.returncode == 0, (
                f"{page}: `{cmd}` failed\n{r.stdout[-2000:]}{r.stderr[-2000:]}"
            )


@pytest.mark.slow
def test_make_demo_runs_small(docs_workdir: Path, tmp_path: Path) -> None:
    """The `make demo` target itself, on real MNIST with fewer rows, epochs and attacks."""
    out = tmp_path / "demo"
    r = subprocess.run(
        [
            "make",
            "demo",
            f"DEMO_DIR={out}",
            "DEMO_TRAIN_ARGS=--n-train 600 --n-test 200 --epochs 1 --seeds 0 1",
            "DEMO_EVAL_ARGS=--eps 0 0.1 --pgd-steps 3 --pgd-restarts 1 --square-n 40 "
            "--square-queries 40",
        ],
        cwd=docs_workdir,
        env={**os.environ, "GIBLOSS_NO_PROGRESS": "1"},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert r.returncode == 0, f"{r.stdout[-2000:]}{r.stderr[-2000:]}"
    report = (out / "report.md").read_text()
    assert "Data: MNIST" in report and "STAND-IN" not in report
    for setting in ("plain", "gaussian_copula:0.3", "confidence:0.1", "fgsm_train:0.1"):
        assert f"| {setting} |" in report
    assert "positive control fgsm_train:0.1" in report


def test_docs_figure_script_runs(tmp_path: Path) -> None:
    run_script("docs/make_figures.py", tmp_path)
    assert (tmp_path / "information-plane.png").stat().st_size > 10_000


def test_digits_demo_writes_table(tmp_path: Path) -> None:
    out = run_script(
        "evaluation/digits_gib.py", "--components", 5, "--estimators", "binning",
        "gaussian_copula", "--output-dir", tmp_path,
    )
    assert "| binning |" in out.stdout and "| gaussian_copula |" in out.stdout
    assert (tmp_path / "digits_gib.md").read_text().startswith("# GIB terms")

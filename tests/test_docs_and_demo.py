"""The README's code runs, and the demo script produces its table."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def test_readme_python_blocks_run(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    blocks = _python_blocks(ROOT / "README.md")
    assert blocks, "README has no python block"
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})


@pytest.mark.parametrize("page", ["theory.md", "loss.md", "monitoring.md"])
def test_docs_python_blocks_run(page: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # blocks that write runs/ write them here
    blocks = _python_blocks(ROOT / "docs" / page)
    assert blocks
    for block in blocks:
        exec(compile(block, f"docs/{page}", "exec"), {})


@pytest.mark.parametrize("page", ["monitoring.md"])
def test_docs_shell_blocks_run(page: str, tmp_path: Path, monkeypatch) -> None:
    """Every `gibloss ...` command in the page runs against the page's own example output."""
    monkeypatch.chdir(tmp_path)
    for block in _python_blocks(ROOT / "docs" / page):
        exec(compile(block, f"docs/{page}", "exec"), {})
    shell = re.findall(r"```bash\n(.*?)```", (ROOT / "docs" / page).read_text(), flags=re.S)
    commands = [c for b in shell for c in b.strip().splitlines() if c.startswith("gibloss ")]
    assert commands
    exe = Path(sys.executable).with_name("gibloss")
    for cmd in commands:
        r = subprocess.run([str(exe), *cmd.split()[1:]], capture_output=True, text=True)
        assert r.returncode == 0, cmd + "\n" + r.stderr


def test_digits_demo_writes_table(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "evaluation" / "digits_gib.py"),
            "--components",
            "5",
            "--estimators",
            "binning",
            "gcmi",
            "--output-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "| binning |" in out.stdout and "| gcmi |" in out.stdout
    assert (tmp_path / "digits_gib.md").read_text().startswith("# GIB terms")

"""Shared fixtures and settings for the test suite."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch
from hypothesis import settings
from hypothesis.configuration import set_hypothesis_home_dir

matplotlib.use("Agg")

# Hypothesis profiles: "gibloss" (make test) runs a few hundred cases per property; "fuzz" (make
# fuzz, selected with HYPOTHESIS_PROFILE=fuzz) runs enough that the fuzz properties together
# generate more than 10^4 cases. GIBLOSS_HYPOTHESIS_EXAMPLES overrides either count.
_EXAMPLES = os.environ.get("GIBLOSS_HYPOTHESIS_EXAMPLES")
# Hypothesis' own files (its constants cache) go to a temporary folder, not the repository.
set_hypothesis_home_dir(tempfile.mkdtemp(prefix="gibloss-hypothesis-"))

# No example database: tests write only under temporary folders (a failure prints its blob).
settings.register_profile(
    "gibloss", max_examples=int(_EXAMPLES or 300), deadline=None, print_blob=True, database=None
)
settings.register_profile(
    "fuzz", max_examples=int(_EXAMPLES or 1600), deadline=None, print_blob=True, database=None
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "gibloss"))


class CaseCounter:
    """Counts the generated cases that the properties ran (printed at the end of the session)."""

    def __init__(self) -> None:
        self.count = 0

    def tick(self) -> None:
        self.count += 1


_CASES = CaseCounter()


@pytest.fixture(scope="session")
def case_counter() -> CaseCounter:
    return _CASES


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if _CASES.count:
        failed = len(terminalreporter.stats.get("failed", []))
        profile = os.environ.get("HYPOTHESIS_PROFILE", "gibloss")
        terminalreporter.write_line(
            f"property cases generated: {_CASES.count} (profile {profile!r}, "
            f"{settings.default.max_examples} per property); failed properties: {failed}"
        )


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


def two_process_launcher() -> list[str]:
    """``accelerate launch`` for two gloo processes on a CPU, or skip the test.

    On a CPU two processes need ``--multi_gpu``: plain ``--num_processes 2`` silently runs one.
    """
    exe = Path(sys.executable).with_name("accelerate")
    found = str(exe) if exe.exists() else shutil.which("accelerate")
    if found is None:
        pytest.skip("accelerate CLI not installed")
    return [
        found,
        "launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        "0",
    ]


#: Messages of a launch that failed before the job ran: the gloo rendezvous between the two
#: processes (seen about once in a dozen launches on a shared 2-core machine).
RENDEZVOUS_FAILURES = (
    "DistNetworkError",
    "address already in use",
    "EADDRINUSE",
    "Connection reset by peer",
    "connectFullMesh",
    "Timed out initializing process group",
    "TCPStore",
    "rendezvous",
)
_LAST_LAUNCH_RETRIED = [False]


def is_rendezvous_failure(stderr: str) -> bool:
    """Whether a failed launch's output names a rendezvous failure (not the job's own error)."""
    return any(marker in stderr for marker in RENDEZVOUS_FAILURES)


def run_launched(cmd: list[str], cleanup: list[Path], **kwargs) -> subprocess.CompletedProcess:
    """Run a two-process launch; retry once only when the processes failed to meet.

    A launch that fails for any other reason (a worker's exception, a crash, a timeout) is
    returned as it is, for the caller's assertions to fail on. A rendezvous failure is retried
    once from a clean slate (``cleanup`` paths are removed), with a warning that carries its
    output; a second one in a row, or a retry needed by two launches in a row, fails the test.
    What the job computes is never retried: its results are asserted exactly by the caller.
    """
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if proc.returncode == 0 or not is_rendezvous_failure(proc.stderr):
        _LAST_LAUNCH_RETRIED[0] = False
        return proc
    if _LAST_LAUNCH_RETRIED[0]:
        pytest.fail(f"two launches in a row failed to rendezvous:\n{proc.stderr[-2000:]}")
    warnings.warn(
        f"two-process rendezvous failed once, retrying:\n{proc.stderr[-2000:]}",
        RuntimeWarning,
        stacklevel=2,
    )
    _LAST_LAUNCH_RETRIED[0] = True
    for p in cleanup:
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if proc.returncode != 0 and is_rendezvous_failure(proc.stderr):
        pytest.fail(f"the retried launch failed to rendezvous too:\n{proc.stderr[-2000:]}")
    return proc


def bins_kw(estimator: str, n: int) -> dict[str, int]:
    """``bins=n`` for binning (features and Z), ``z_bins=n`` for the Gaussian copula (Z only)."""
    return {"bins": n} if estimator == "binning" else {"z_bins": n}


def three_class_batch(n: int, seed: int = 0) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
    """``(x, logits, y)``: 4 Gaussian features, 3 classes driven by the first two, and noisy
    logits that read them (the loss tests' common batch)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    y = (x[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(np.int64) + (x[:, 1] > 0.5)
    logits = np.column_stack([x[:, 0], -x[:, 0], x[:, 1]]) + rng.normal(size=(n, 3))
    return x, torch.tensor(logits), torch.tensor(y)


def run_script(script: str, *args: object, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run the repository's ``script`` with this Python from the repository root (one thread, no
    progress bars); the test fails with the end of its stderr unless it exits 0."""
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "GIBLOSS_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1"}
    r = subprocess.run(
        [sys.executable, str(root / script), *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        timeout=timeout,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return r

"""Cost of ``import gibloss`` against ``import torch``, each in fresh processes.

``import gibloss`` loads torch and numpy; scikit-learn, scipy, matplotlib and the CLI load only
when something needs them. Target: at most 1.3x the time of ``import torch``.

Usage::

    python evaluation/bench_import.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def import_time(module: str) -> float:
    """Wall time of ``python -c "import MODULE"`` in a fresh interpreter (seconds)."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    import_time("torch")  # warm the file cache for both
    import_time("gibloss")
    torch_t = statistics.median(import_time("torch") for _ in range(args.repeats))
    gib_t = statistics.median(import_time("gibloss") for _ in range(args.repeats))
    print(f"median of {args.repeats} fresh processes (interpreter start-up included)")
    print(f"import torch    {torch_t:6.2f} s")
    print(f"import gibloss  {gib_t:6.2f} s   {gib_t / torch_t:.2f}x torch (target <= 1.3x)")


if __name__ == "__main__":
    main()

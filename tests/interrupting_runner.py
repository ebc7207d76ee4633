"""Run a recipe and die like a killed job after N epochs: the test fixture of resumption.

Usage: ``GIBLOSS_TEST_INTERRUPT_AFTER=N python tests/interrupting_runner.py recipes/NAME.py ...``
The recipe runs unchanged; only ``Recipe.epoch_done`` is wrapped, here, to end the process with
the status of a killed job (137) once N epochs have finished in this process.
"""

from __future__ import annotations

import os
import runpy
import sys

from gibloss._recipes.experiment import Recipe


def main() -> None:
    limit = int(os.environ["GIBLOSS_TEST_INTERRUPT_AFTER"])
    epoch_done = Recipe.epoch_done

    def dying_epoch_done(self: Recipe) -> None:
        epoch_done(self)
        if self._epochs_this_process >= limit:
            sys.stdout.flush()
            os._exit(137)

    Recipe.epoch_done = dying_epoch_done  # type: ignore[method-assign]
    script = sys.argv[1]
    sys.argv = sys.argv[1:]
    sys.path[0] = os.path.dirname(os.path.abspath(script))  # as if the recipe were run directly
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()

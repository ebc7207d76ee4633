"""A 🤗 Transformers ``TrainerCallback`` that monitors information planes."""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback

from ..monitor import InformationPlaneMonitor, record_scalars

__all__ = ["GIBTrainerCallback"]


class GIBTrainerCallback(TrainerCallback):
    """Measure IB/GIB planes with a monitor during ``Trainer.train``.

    Measures at every evaluation (``at_evaluate=True``) and/or every ``every_steps`` optimiser
    steps; each measurement is appended to the monitor's JSON Lines file and its scalars are logged
    through the Trainer (``trainer.log``: console, TensorBoard, W&B...) when the callback is bound
    to it with :meth:`attach`, else appended to ``state.log_history``. The monitor is closed (hooks
    removed, run-range IB appended) when training ends.

    Parameters
    ----------
    monitor : InformationPlaneMonitor
        Monitor of the Trainer's model.
    every_steps : int, optional
        Also measure every ``every_steps`` global steps.
    at_evaluate : bool
        Measure after each evaluation.

    Examples
    --------
    ::

        monitor = InformationPlaneMonitor(trainer.model, probe=(input_ids, labels),
                                          layers=["classifier"], path="runs/bert/metrics.jsonl")
        GIBTrainerCallback.attach(trainer, monitor, every_steps=50)
        trainer.train()
    """

    def __init__(
        self,
        monitor: InformationPlaneMonitor,
        every_steps: int | None = None,
        at_evaluate: bool = True,
    ) -> None:
        if every_steps is not None and (not isinstance(every_steps, int) or every_steps < 1):
            raise ValueError(
                f"`every_steps` must be a positive integer or None, got {every_steps!r}"
            )
        self.monitor = monitor
        self.every_steps = every_steps
        self.at_evaluate = at_evaluate
        self.trainer: Any = None
        self._last_step: int | None = None

    @classmethod
    def attach(
        cls, trainer: Any, monitor: InformationPlaneMonitor, **kwargs: Any
    ) -> GIBTrainerCallback:
        """Create the callback, bind it to ``trainer`` (for ``trainer.log``) and add it."""
        cb = cls(monitor, **kwargs)
        cb.trainer = trainer
        trainer.add_callback(cb)
        return cb

    def _measure(self, state: Any) -> None:
        if self._last_step == state.global_step:
            return  # already measured at this step (evaluation right after a k-step measurement)
        self._last_step = state.global_step
        record = self.monitor.measure(step=int(state.global_step), epoch=state.epoch)
        if record is None:  # not the main process
            return
        scalars = record_scalars(record)
        if self.trainer is not None:
            self.trainer.log(scalars)
        else:
            state.log_history.append({**scalars, "step": state.global_step, "epoch": state.epoch})

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.every_steps and state.global_step % self.every_steps == 0:
            self._measure(state)

    def on_evaluate(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.at_evaluate:
            self._measure(state)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.monitor.close()

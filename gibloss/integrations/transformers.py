"""A 🤗 Transformers ``TrainerCallback`` that monitors information planes."""

from __future__ import annotations

from typing import Any

from transformers import Trainer, TrainerCallback

from ..loss import GIBLoss
from ..monitor import InformationPlaneMonitor, record_scalars

__all__ = ["GIBTrainer", "GIBTrainerCallback"]


class GIBTrainer(Trainer):
    """A 🤗 ``Trainer`` whose loss is the model's loss plus a :class:`~gibloss.GIBLoss`.

    Each batch must carry the GIB features of its rows under ``feature_key`` (precomputed once,
    served beside the inputs); they are removed from the batch before the model's
    forward. Under multi-process training the loss gathers the global batch itself. The GIB terms
    of the last step are logged with the Trainer's logs (``gib/complexity``).

    Parameters
    ----------
    *args, **kwargs
        Those of ``transformers.Trainer``.
    gib_loss : GIBLoss
        The regulariser.
    feature_key : str
        Batch key of the features (default ``"gib_features"``).
    """

    def __init__(
        self, *args: Any, gib_loss: GIBLoss, feature_key: str = "gib_features", **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.gib_loss = gib_loss
        self.feature_key = feature_key

    def _set_signature_columns_if_needed(self) -> None:
        # keep the feature column when the Trainer drops inputs the model does not take
        super()._set_signature_columns_if_needed()
        if self.feature_key not in self._signature_columns:
            self._signature_columns.append(self.feature_key)

    def compute_loss(
        self,
        model: Any,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> Any:
        if self.feature_key not in inputs:
            raise KeyError(
                f"the batch has no {self.feature_key!r}: serve the GIB features of each "
                "row beside its inputs"
            )
        inputs = dict(inputs)
        features = inputs.pop(self.feature_key)
        outputs = model(**inputs)
        loss = outputs.loss + self.gib_loss(features, outputs.logits, inputs["labels"])
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        if self.gib_loss.last_terms is not None and "loss" in logs:
            logs = {**logs, "gib/complexity": float(self.gib_loss.last_terms.complexity.mean())}
        super().log(logs, *args, **kwargs)


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

"""A 🤗 Transformers ``TrainerCallback`` that monitors information planes."""

from __future__ import annotations

from typing import Any

from transformers import Trainer, TrainerCallback

from ..loss import GIBLoss
from ..monitor import InformationPlaneMonitor, record_scalars

__all__ = ["GIBTrainer", "GIBTrainerCallback"]


class GIBTrainer(Trainer):
    """A 🤗 ``Trainer`` whose training loss is the model's loss plus a :class:`~gibloss.GIBLoss`.

    Each training batch must carry the GIB features of its rows under ``feature_key``
    (precomputed once, served beside the inputs); they are removed from the batch before the
    model's forward. Under multi-process training the loss gathers the global batch itself. The
    loss's value on the last training batch is logged with the Trainer's logs as
    ``gib_loss/batch_complexity`` (not to be confused with a monitor's exact values on a probe).

    Evaluation reports the model's own loss (``eval_loss``) unless ``gib_in_eval=True``, which
    adds the GIB term there too; then the evaluation rows need their features as well. Missing
    features are reported at construction, from the first row of each dataset.

    Parameters
    ----------
    *args, **kwargs
        Those of ``transformers.Trainer``.
    gib_loss : GIBLoss
        The regulariser.
    feature_key : str
        Batch key of the features (default ``"gib_features"``).
    gib_in_eval : bool
        Add the GIB term to ``eval_loss`` (default False: the task loss alone).
    """

    def __init__(
        self,
        *args: Any,
        gib_loss: GIBLoss,
        feature_key: str = "gib_features",
        gib_in_eval: bool = False,
        **kwargs: Any,
    ) -> None:
        if not isinstance(gib_loss, GIBLoss):
            raise TypeError(f"`gib_loss` must be a GIBLoss, got {type(gib_loss).__name__}")
        super().__init__(*args, **kwargs)
        self.gib_loss = gib_loss
        self.feature_key = feature_key
        self.gib_in_eval = bool(gib_in_eval)
        self._check_rows(self.train_dataset, "train_dataset")
        if self.gib_in_eval:
            evals = self.eval_dataset
            named = evals.items() if isinstance(evals, dict) else [("eval_dataset", evals)]
            for name, dataset in named:
                self._check_rows(dataset, str(name))

    def _check_rows(self, dataset: Any, name: str) -> None:
        """Fail now, not after an epoch, when the rows lack their GIB features."""
        if dataset is None:
            return
        try:
            row = dataset[0]
        except (TypeError, IndexError, KeyError, NotImplementedError):
            return  # an iterable dataset: checked at the first batch
        if isinstance(row, dict) and self.feature_key not in row:
            raise ValueError(
                f"`{name}` rows have no {self.feature_key!r} (keys: {sorted(row)}): serve the "
                "GIB features of each row beside its inputs"
                + ("" if name == "train_dataset" else ", or pass gib_in_eval=False")
            )

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
        inputs = dict(inputs)
        features = inputs.pop(self.feature_key, None)
        outputs = model(**inputs)
        with_gib = model.training or self.gib_in_eval
        if not with_gib:
            loss = outputs.loss  # evaluation: the task loss alone
        elif features is None:
            raise KeyError(
                f"the batch has no {self.feature_key!r}: serve the GIB features of each "
                "row beside its inputs"
            )
        else:
            loss = outputs.loss + self.gib_loss(features, outputs.logits, inputs["labels"])
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        if self.gib_loss.last_terms is not None and "loss" in logs:
            value = float(self.gib_loss.last_terms.complexity.mean())
            logs = {**logs, "gib_loss/batch_complexity": value}
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

"""🤗 Accelerate helpers: monitor on the main process, log through ``accelerator.log``."""

from __future__ import annotations

from typing import Any

from ..loss import GIBLoss
from ..monitor import InformationPlaneMonitor

__all__ = ["log_gib_loss", "make_monitor"]


def make_monitor(
    accelerator: Any, model: Any, probe: tuple[Any, Any], **kwargs: Any
) -> InformationPlaneMonitor:
    """An :class:`~gibloss.InformationPlaneMonitor` bound to ``accelerator``.

    The monitor unwraps the prepared model, computes on the main process only (the others wait,
    so every process stays in step) and logs its scalars through ``accelerator.log`` as well as
    to its JSON Lines file. Call ``monitor.measure(...)`` on every process.
    """
    return InformationPlaneMonitor(model, probe, accelerator=accelerator, **kwargs)


def log_gib_loss(
    accelerator: Any, loss: GIBLoss, step: int | None = None, prefix: str = "gib_loss"
) -> dict[str, float]:
    """Log the terms of a GIBLoss's last call (no recomputation) through ``accelerator.log``.

    These are the loss's surrogate values on the last training batch, named ``batch_*`` so that
    they are not confused with the monitor's exact values on the probe
    (``gib/<estimator>/complexity``). Returns the logged scalars:
    ``{prefix}/batch_complexity`` (unweighted), ``{prefix}/batch_weighted`` (times the loss's
    weight: what was added to the training loss), ``{prefix}/batch_prediction``,
    ``{prefix}/batch_whole`` (``I(X; Q)``) and ``{prefix}/batch_h_q``. Every process may call
    it; Accelerate logs on the main process.
    """
    if loss.last_terms is None:
        raise RuntimeError("the GIBLoss has not been called yet; nothing to log")
    t = loss.last_terms
    scalars = {
        f"{prefix}/batch_complexity": float(t.complexity.mean()),
        f"{prefix}/batch_weighted": loss.weight * float(t.complexity.mean()),
        f"{prefix}/batch_prediction": float(t.prediction),
        f"{prefix}/batch_whole": float(t.whole),
        f"{prefix}/batch_h_q": float(t.h_q),
    }
    accelerator.log(scalars, step=step)
    return scalars

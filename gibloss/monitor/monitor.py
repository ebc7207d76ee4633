"""The information-plane monitor: a hook recorder, a record function and a run store, composed.

:class:`InformationPlaneMonitor` hooks chosen layers of a model
(:class:`~gibloss.monitor.hooks.ActivationRecorder`); every call to :meth:`measure` runs the probe
through the model, turns the activations into one record
(:func:`~gibloss.monitor.record.measurement_record`: IB per layer, the GIB terms with per-feature
vectors, nulls, accuracy and loss) and appends it at once
(:class:`~gibloss.monitor.store.RunStore`), so a crash loses nothing already measured.

Two binning conventions change the science, so both are available:

* ``"per_call"`` — bin edges from each measurement's own min–max (every record);
* ``"run_range"`` — one range per layer over the whole run (Saxe et al.). The range is only known
  at the end, so the monitor keeps the probe's layer activations (float16 unless a value needs a
  wider dtype, compressed, one file per measurement beside the records) and :meth:`close` (or
  :func:`~gibloss.monitor.store.recompute_run_range`) appends the IB records of this convention.
  Every IB record says which convention produced it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..distributed import barrier, is_main_process
from ..estimators import Estimator, get_estimator
from ..spec import GIBSpec
from .hooks import ActivationRecorder
from .record import Probe, measurement_record, record_scalars, run_range_records
from .store import RunStore

__all__ = ["InformationPlaneMonitor"]

CONVENTIONS = ("per_call", "run_range")


class InformationPlaneMonitor:
    """Measure IB and GIB information planes of a model on a fixed probe set.

    Parameters
    ----------
    model : torch.nn.Module
        The model (a DDP / Accelerate-wrapped model is unwrapped through ``accelerator``).
    probe : tuple
        ``(x, y)``: model inputs ``(n, ...)`` and targets ``(n,)`` (the paper uses the first 5000
        training samples).
    layers : sequence of str, optional
        Module names to hook. Default (:func:`default_layers`): a 🤗 transformer's blocks, else
        every Linear / Conv module. The model output is always recorded as layer ``"output"``.
        Token ids of a 🤗 model are passed with their attention mask (from the config's
        ``pad_token_id``), and token states are averaged over the unmasked tokens.
    features : array-like or Reducer, optional
        GIB input features ``(n, N)`` of the probe, or a reducer (fitted on the probe if it is not
        yet). Default: the flattened probe inputs when they have at most 64 columns, otherwise
        PCA-50 fitted once on the probe.
    estimators : sequence of str or Estimator
        Exact estimators for the IB and GIB terms (``"binning"``, ``"kde"``, ``"gaussian_copula"``).
    path : str or Path, optional
        JSON Lines file to append records to (one per measurement, written immediately).
    run : str
        Run identifier stored in every record (one panel per run in the plots).
    every : int
        :meth:`step` measures when ``step % every == 0``.
    conventions : sequence of {"per_call", "run_range"}
        Binning conventions for IB (see the module docstring).
    bins : int
        Bins of the binning estimator (IB and GIB).
    gib_options : dict or GIBSpec, optional
        Extra keyword arguments of :func:`gibloss.gib` (``pmi``, ``z_code``, ``beta``...) for
        every estimator's GIB; or one :class:`gibloss.spec.GIBSpec` (a loss's ``loss.spec``),
        whose GIB is then recorded under ``record["gib"][spec.estimator]`` in place of the
        estimators' (which still give the IB planes): the monitor then measures on the probe
        exactly the quantity that loss trains, beside its shuffled null. The run header stores
        the spec's resolved fields.
    loss_fn : callable, optional
        ``loss_fn(outputs, y) -> scalar``; default cross-entropy for logits and integer labels,
        mean squared error otherwise.
    batch_size : int
        Probe rows per forward pass.
    reduce_conv : {"mean", "flatten"}
        How conv feature maps become per-sample vectors.
    accelerator : accelerate.Accelerator, optional
        Compute on the main process only; every process calls :meth:`measure` and waits for it,
        so all stay in step; scalars also go to ``accelerator.log``.
    resume : bool
        Continue the run ``run`` in an existing ``path``: no new header, measurement indices go
        on, kept activations of measurements without a record are dropped.
    overwrite : bool
        When ``path`` already holds records of ``run`` (and ``resume`` is False): drop them (the
        file is rewritten without them; other runs stay) and start the run afresh. By default
        the new run is recorded under the first free id ``run-2``, ``run-3``... with a warning,
        never merged into the old one.
    null : int, default 1
        Shuffles of the shuffled-label null recorded beside every GIB and per-call IB term
        (``record["gib"][est]["null"]``: what the estimator reads with Q's rows permuted against
        the features, and Y's against Z; ``record["ib"][est][layer]["null"]``: T's rows permuted
        against X, and Y's against T). The planes keep the plug-in values; ``gibloss summary``
        also reports GIB's minus the null. 0 records no null (about half the cost). The GIB null
        is skipped when ``gib_options`` sets ``bias_correction`` or ``z_code="soft"``.
    argmax_reading : bool, default True
        For a classifier (integer labels) whose outputs are coded otherwise than by their argmax
        (binning's default, ``"probs"``), every record also holds the same plane with Z coded by
        the decision alone, ``record["gib"][est]["argmax"]`` (``prediction``, ``complexity``,
        ``h_q``, ``n_z_codes`` and its own null): a fall of the complexity that this reading does
        not share is the softmax saturating, not the features losing information about the
        decisions (see :func:`gibloss.compression`). ``False`` skips it.
    losses : mapping of str to GIBLoss, optional
        Regularisers whose target to record: at every measurement, ``loss.measure`` on the
        probe (features, or raw inputs when the loss has its own reducer) goes into the record
        under ``"losses"``, so the quantity a loss optimises can be watched on held-out rows.

    Examples
    --------
    >>> import torch
    >>> from gibloss import InformationPlaneMonitor
    >>> _ = torch.manual_seed(0)
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    >>> x, y = torch.randn(200, 4), torch.randint(0, 2, (200,))
    >>> with InformationPlaneMonitor(model, (x, y), bins=10) as mon:
    ...     record = mon.measure(epoch=0)
    >>> sorted(record["ib"]["binning"])  # the last Linear ("2") is the output: measured once
    ['0', 'output']
    """

    def __init__(
        self,
        model: nn.Module,
        probe: tuple[Any, Any],
        *,
        layers: Sequence[str] | None = None,
        features: Any = None,
        estimators: Iterable[str | Estimator] = ("binning",),
        path: str | Path | None = None,
        run: str = "run",
        every: int = 1,
        conventions: Sequence[str] = ("per_call", "run_range"),
        bins: int = 30,
        gib_options: Mapping[str, Any] | GIBSpec | None = None,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        batch_size: int = 1024,
        reduce_conv: str = "mean",
        accelerator: Any = None,
        resume: bool = False,
        overwrite: bool = False,
        losses: Mapping[str, Any] | None = None,
        null: int = 1,
        argmax_reading: bool = True,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"`model` must be a torch.nn.Module, got {type(model).__name__}")
        bad = [c for c in conventions if c not in CONVENTIONS]
        if bad or not conventions:
            raise ValueError(
                f"`conventions` must be a non-empty subset of {CONVENTIONS}, got {conventions!r}"
            )
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise ValueError(f"`every` must be a positive integer, got {every!r}")
        if not isinstance(null, int) or isinstance(null, bool) or null < 0:
            raise ValueError(f"`null` must be a non-negative integer, got {null!r}")
        if not isinstance(argmax_reading, bool):
            raise TypeError(f"`argmax_reading` must be a bool, got {argmax_reading!r}")
        self.losses = dict(losses or {})
        for name, loss in self.losses.items():
            if not callable(getattr(loss, "measure", None)):
                raise TypeError(
                    f"`losses[{name!r}]` must have a measure(x, outputs, y) method (a GIBLoss), "
                    f"got {type(loss).__name__}"
                )
        self.accelerator = accelerator
        self.model = accelerator.unwrap_model(model) if accelerator is not None else model
        self.probe = Probe.from_data(probe, features)
        self.estimators = [
            get_estimator(e, bins=bins) if e == "binning" else get_estimator(e) for e in estimators
        ]
        if not self.estimators:
            raise ValueError("`estimators` must name at least one estimator")
        self.recorder = ActivationRecorder(
            self.model, layers, reduce_conv=reduce_conv, batch_size=batch_size
        )
        self.every = every
        self.conventions = tuple(conventions)
        self.bins = bins
        if gib_options is not None and not isinstance(gib_options, (GIBSpec, Mapping)):
            raise TypeError(
                "`gib_options` must be a dict of gibloss.gib keywords or a GIBSpec, got "
                f"{type(gib_options).__name__}"
            )
        self.gib_options: dict[str, Any] | GIBSpec = (
            gib_options if isinstance(gib_options, GIBSpec) else dict(gib_options or {})
        )
        self.loss_fn = loss_fn
        self.null = null
        self.argmax_reading = argmax_reading
        self.store = RunStore(
            path, run, resume=resume, overwrite=overwrite, accelerator=accelerator
        ).open()
        self.closed = False
        self.store.write_header(
            {
                "layers": self.layer_names + ["output"],
                "estimators": [e.name for e in self.estimators],
                "conventions": list(self.conventions),
                "bins": bins,
                "probe_size": len(self.probe.y_np),
                "features": self.probe.features_desc,
                "gib_options": (
                    {"spec": self.gib_options.as_dict()}
                    if isinstance(self.gib_options, GIBSpec)
                    else self.gib_options
                ),
                "time": time.time(),
            }
        )

    # -- the parts' state, under the names the monitor always had ---------------------------

    @property
    def layer_names(self) -> list[str]:
        """The hooked module names (the output is recorded as ``"output"`` besides)."""
        return self.recorder.layer_names

    @property
    def path(self) -> Path | None:
        """The JSON Lines file of the records (None: in memory)."""
        return self.store.path

    @property
    def run(self) -> str:
        """The run id the records carry."""
        return self.store.run

    @property
    def records(self) -> list[dict[str, Any]]:
        """The records written by this monitor in this process."""
        return self.store.records

    @property
    def features(self) -> Any:
        """The probe's GIB features ``(n, N)``."""
        return self.probe.features

    @property
    def activations_dir(self) -> Path | None:
        """Where run-range activations are kept (beside the records, one folder per run)."""
        return self.store.activations_dir

    # -- measuring ---------------------------------------------------------------------------

    def measure(
        self, *, step: int | None = None, epoch: float | None = None
    ) -> dict[str, Any] | None:
        """Measure now and append one record; returns it (``None`` on non-main processes)."""
        if self.closed:
            raise RuntimeError("the monitor is closed")
        if not is_main_process(self.accelerator):
            barrier(self.accelerator)
            return None
        t0 = time.perf_counter()
        acts, out = self.recorder(self.probe.x)
        record: dict[str, Any] = {
            "kind": "measurement",
            "run": self.run,
            "index": self.store.next_index,
            "step": step,
            "epoch": epoch,
        }
        record |= measurement_record(
            acts,
            out,
            self.probe,
            estimators=self.estimators,
            per_call="per_call" in self.conventions,
            gib_options=self.gib_options,
            null=self.null,
            argmax_reading=self.argmax_reading,
            loss_fn=self.loss_fn,
            losses=self.losses,
        )
        if "run_range" in self.conventions:
            self.store.keep(acts, step, epoch)
        record["seconds"] = time.perf_counter() - t0
        self.store.append(record)
        self.store.next_index += 1
        if self.accelerator is not None:
            self.accelerator.log(record_scalars(record), step=step)
        barrier(self.accelerator)
        return record

    def step(self, step: int, *, epoch: float | None = None) -> dict[str, Any] | None:
        """Measure when ``step % every == 0`` (call it every training step); else do nothing."""
        if step % self.every:
            return None
        return self.measure(step=step, epoch=epoch)

    def finalize(self) -> list[dict[str, Any]]:
        """Append IB records with one bin range per layer over the whole run (Saxe et al.)."""
        if "run_range" not in self.conventions or not is_main_process(self.accelerator):
            return []
        acts, meta = self.store.kept()
        probe = self.probe
        recs = run_range_records(acts, meta, probe.y_np, probe.x_rows, self.bins, self.run)
        for r in recs:
            self.store.append(r)
        return recs

    def close(self) -> None:
        """Remove the hooks and append the run-range IB records (idempotent)."""
        if self.closed:
            return
        self.recorder.remove()
        try:
            self.finalize()
        finally:
            self.closed = True

    def __enter__(self) -> InformationPlaneMonitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

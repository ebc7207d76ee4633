"""Information-plane monitoring on a fixed probe set.

:class:`InformationPlaneMonitor` hooks chosen layers of a model; every call to :meth:`measure`
runs the probe through the model (eval mode, no gradient, training state restored afterwards),
computes IB per layer, the GIB terms with per-feature vectors, accuracy and loss, and appends one
JSON Lines record at once, so a crash loses nothing already measured.

Two binning conventions change the science, so both are available:

* ``"per_call"`` — bin edges from each measurement's own min–max (every record);
* ``"run_range"`` — one range per layer over the whole run (Saxe et al.). The range is only known
  at the end, so the monitor keeps the probe's layer activations (float16 unless a value needs a
  wider dtype, compressed, one file per measurement beside the records) and :meth:`close` (or
  :func:`recompute_run_range`) appends the IB records of this convention. Every IB record says
  which convention produced it.
"""

from __future__ import annotations

import os
import shutil
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._validation import as_array, check_same_length
from .estimators import BinningEstimator, Estimator, get_estimator
from .measures import default_z_code, gib, ib
from .records import append_record, read_records
from .reduction import PCAReducer, Reducer

__all__ = ["InformationPlaneMonitor", "default_layers", "record_scalars", "recompute_run_range"]

CONVENTIONS = ("per_call", "run_range")
_DEFAULT_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _transformer_blocks(model: nn.Module) -> list[str]:
    """Names of a 🤗 transformer's blocks: the items of its largest ``ModuleList``, or ``[]``."""
    if not hasattr(model, "config"):
        return []
    lists = [
        (sum(p.numel() for p in m.parameters()), name)
        for name, m in model.named_modules()
        if isinstance(m, nn.ModuleList) and len(m) > 0 and name
    ]
    if not lists:
        return []
    _, name = max(lists)
    return [f"{name}.{i}" for i in range(len(dict(model.named_modules())[name]))]


def default_layers(model: nn.Module) -> list[str]:
    """The layers the monitor hooks by default (it adds the output itself).

    For a 🤗 transformer (a model with a ``config``), the outputs of its blocks (e.g.
    ``bert.encoder.layer.0`` ... ``.11``), averaged over the tokens the attention mask keeps;
    for any other model, every Linear / Conv module.
    """
    blocks = _transformer_blocks(model)
    if blocks:
        return blocks
    return [name for name, m in model.named_modules() if isinstance(m, _DEFAULT_TYPES) and name]


def _token_mask(model: nn.Module, batch: torch.Tensor) -> torch.Tensor | None:
    """The attention mask of a batch of a 🤗 model's token ids (from its pad id), else None."""
    pad = getattr(getattr(model, "config", None), "pad_token_id", None)
    is_ids = not batch.dtype.is_floating_point and batch.ndim == 2
    if pad is not None and is_ids and getattr(model, "main_input_name", "") == "input_ids":
        return (batch != pad).long()
    return None


def _output_tensor(out: Any) -> torch.Tensor:
    """The logits of a model's output: a tensor, ``.logits`` of a ModelOutput, or the first item."""
    if isinstance(out, torch.Tensor):
        return out
    if hasattr(out, "logits"):
        return out.logits
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    raise TypeError(f"cannot find the outputs (logits) in a model output of type {type(out)}")


def _summarise(
    t: torch.Tensor, reduce_conv: str, token_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Per-sample activations ``(n, d)``: conv maps are averaged over space unless flattened;
    token states ``(n, tokens, d)`` are averaged over the tokens the mask keeps."""
    t = t.detach()
    if token_mask is not None and t.ndim == 3 and t.shape[:2] == token_mask.shape:
        m = token_mask.to(t.dtype).unsqueeze(-1)
        return ((t * m).sum(dim=1) / m.sum(dim=1).clamp_min(1.0)).float().cpu()
    if t.ndim > 2 and reduce_conv == "mean":
        t = t.flatten(2).mean(dim=2)
    return t.flatten(1).float().cpu()


def record_scalars(record: dict[str, Any]) -> dict[str, float]:
    """Flatten a measurement record into ``{"gib/binning/complexity": ..., ...}`` scalars."""
    out: dict[str, float] = {}
    for key in ("accuracy", "loss"):
        if record.get(key) is not None:
            out[f"probe/{key}"] = float(record[key])
    for est, terms in (record.get("gib") or {}).items():
        for k in ("complexity", "prediction", "objective"):
            out[f"gib/{est}/{k}"] = float(terms[k])
    for est, layers in (record.get("ib") or {}).items():
        for layer, terms in layers.items():
            for k in ("complexity", "prediction"):
                out[f"ib/{est}/{layer}/{k}"] = float(terms[k])
    for name, terms in (record.get("losses") or {}).items():
        for k in ("complexity", "prediction", "h_q"):
            if isinstance(terms[k], (int, float)):  # not reduction="none"'s per-feature list
                out[f"loss_measure/{name}/{k}"] = float(terms[k])
    return out


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
    gib_options : dict, optional
        Extra keyword arguments of :func:`gibloss.gib` (``pmi``, ``z_code``, ``beta``...).
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
    >>> sorted(record["ib"]["binning"])
    ['0', '2', 'output']
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
        gib_options: dict[str, Any] | None = None,
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
        if not isinstance(probe, (tuple, list)) or len(probe) != 2:
            raise TypeError("`probe` must be a pair (x, y)")
        bad = [c for c in conventions if c not in CONVENTIONS]
        if bad or not conventions:
            raise ValueError(
                f"`conventions` must be a non-empty subset of {CONVENTIONS}, got {conventions!r}"
            )
        if reduce_conv not in ("mean", "flatten"):
            raise ValueError(f"`reduce_conv` must be 'mean' or 'flatten', got {reduce_conv!r}")
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"`every` must be a positive integer, got {every!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}")
        if not isinstance(null, int) or isinstance(null, bool) or null < 0:
            raise ValueError(f"`null` must be a non-negative integer, got {null!r}")
        self.null = null
        if not isinstance(argmax_reading, bool):
            raise TypeError(f"`argmax_reading` must be a bool, got {argmax_reading!r}")
        self.argmax_reading = argmax_reading
        self.losses = dict(losses or {})
        for name, loss in self.losses.items():
            if not callable(getattr(loss, "measure", None)):
                raise TypeError(
                    f"`losses[{name!r}]` must have a measure(x, outputs, y) method (a GIBLoss), "
                    f"got {type(loss).__name__}"
                )
        self.accelerator = accelerator
        self.model = accelerator.unwrap_model(model) if accelerator is not None else model
        x, y = probe
        self.x = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
        self.y = y if isinstance(y, torch.Tensor) else torch.as_tensor(np.asarray(y))
        n = check_same_length(x=self.x, y=self.y.reshape(len(self.y), -1))
        if n < 2:
            raise ValueError(f"`probe` needs at least 2 samples, got {n}")
        self.y_np = self.y.detach().cpu().numpy()
        # integer labels: the outputs are a classifier's, and can also be read by their argmax
        self._classification = self.y_np.dtype.kind in "biu"
        self.x_rows = as_array(self.x.detach().cpu().reshape(n, -1).numpy(), "probe x")
        self.features, self.features_desc = self._resolve_features(features)
        # the probe's inputs never change: their row identity (IB's X for binning) is coded once
        _, inv = np.unique(self.x_rows, axis=0, return_inverse=True)
        self._x_codes = inv.reshape(-1, 1).astype(np.int64)
        self.estimators = [
            get_estimator(e, bins=bins) if e == "binning" else get_estimator(e) for e in estimators
        ]
        if not self.estimators:
            raise ValueError("`estimators` must name at least one estimator")
        self.path = Path(path) if path is not None else None
        self.run = str(run)
        self.every = every
        self.conventions = tuple(conventions)
        self.bins = bins
        self.gib_options = dict(gib_options or {})
        self.loss_fn = loss_fn
        self.batch_size = batch_size
        self.reduce_conv = reduce_conv
        names = list(layers) if layers is not None else default_layers(self.model)
        modules = dict(self.model.named_modules())
        missing = [nm for nm in names if nm not in modules]
        if missing:
            raise ValueError(
                f"`layers` {missing} are not modules of the model; "
                f"available: {sorted(k for k in modules if k)[:20]}"
            )
        self.layer_names = names
        self._capture: dict[str, list[torch.Tensor]] | None = None
        self._token_mask: torch.Tensor | None = None
        self._handles = [modules[nm].register_forward_hook(self._hook(nm)) for nm in names]
        self._count = 0
        self._memory_activations: list[dict[str, np.ndarray]] = []
        self._meta: list[dict[str, Any]] = []
        self.records: list[dict[str, Any]] = []
        self.closed = False
        if resume and self.path is not None and self.path.exists():
            # continue a run: no new header, measurement indices go on from the last one
            done = [
                r
                for r in read_records(self.path)
                if r.get("kind") == "measurement" and r.get("run") == self.run
            ]
            self._count = 1 + max((int(r["index"]) for r in done), default=-1)
            if self.activations_dir is not None and self.activations_dir.exists():
                for f in self.activations_dir.glob("m*.npz"):
                    if int(f.stem[1:]) >= self._count:
                        f.unlink()  # kept for a measurement whose record did not survive
        elif self._is_main():
            if self.path is not None and self.path.exists():
                self.run = _fresh_run(self.path, self.run, overwrite)
            self._emit(
                {
                    "kind": "header",
                    "run": self.run,
                    "layers": self.layer_names + ["output"],
                    "estimators": [e.name for e in self.estimators],
                    "conventions": list(self.conventions),
                    "bins": bins,
                    "probe_size": n,
                    "features": self.features_desc,
                    "gib_options": self.gib_options,
                    "time": time.time(),
                }
            )

    # -- set-up helpers ----------------------------------------------------------------------

    def _resolve_features(self, features: Any) -> tuple[np.ndarray, str]:
        if features is None:
            if self.x_rows.shape[1] <= 64:
                return self.x_rows.astype(
                    np.float64
                ), f"probe inputs ({self.x_rows.shape[1]} columns)"
            features = PCAReducer(n_components=50)
        if isinstance(features, Reducer):
            if features.n_features_in_ is None:
                features.fit(self.x_rows)
            out = features.transform(self.x_rows)
            return np.asarray(out, dtype=np.float64), repr(features)
        arr = as_array(
            features.detach().cpu() if isinstance(features, torch.Tensor) else features, "features"
        )
        if arr.shape[0] != self.x_rows.shape[0]:
            raise ValueError(
                f"`features` has {arr.shape[0]} rows, the probe has {self.x_rows.shape[0]}"
            )
        return arr.astype(np.float64), f"given ({arr.shape[1]} columns)"

    def _hook(self, name: str) -> Callable[..., None]:
        def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
            if self._capture is not None:
                self._capture.setdefault(name, []).append(
                    _summarise(_output_tensor(output), self.reduce_conv, self._token_mask)
                )

        return hook

    def _is_main(self) -> bool:
        if self.accelerator is not None:
            return bool(self.accelerator.is_main_process)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.get_rank() == 0
        return True

    def _barrier(self) -> None:
        if self.accelerator is not None:
            self.accelerator.wait_for_everyone()
        elif torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.barrier()

    def _emit(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        if self.path is not None:
            append_record(self.path, record)

    @property
    def activations_dir(self) -> Path | None:
        """Where run-range activations are kept (beside the records, one folder per run)."""
        return None if self.path is None else _activations_dir(self.path, self.run)

    # -- measuring -------------------------------------------------------------------------

    def _forward_probe(self) -> tuple[dict[str, np.ndarray], torch.Tensor]:
        model = self.model
        modes = {m: m.training for m in model.modules()}
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        self._capture = {}
        outputs = []
        try:
            model.eval()
            with torch.no_grad():
                for s in range(0, len(self.x), self.batch_size):
                    batch = self.x[s : s + self.batch_size].to(device)
                    mask = self._token_mask = _token_mask(model, batch)
                    out = model(batch) if mask is None else model(batch, attention_mask=mask)
                    outputs.append(_output_tensor(out).detach().float().cpu())
            acts = {k: torch.cat(v).numpy() for k, v in self._capture.items()}
        finally:
            self._capture = None
            self._token_mask = None
            for m, mode in modes.items():
                m.train(mode)
        out = torch.cat(outputs)
        acts["output"] = out.reshape(len(out), -1).numpy()
        return acts, out

    def _loss_and_accuracy(self, out: torch.Tensor) -> tuple[float, float | None]:
        y = self.y.detach().cpu()
        classification = out.ndim == 2 and out.shape[1] >= 2 and not y.dtype.is_floating_point
        if self.loss_fn is not None:
            loss = float(self.loss_fn(out, y))
        elif classification:
            loss = float(F.cross_entropy(out, y.long()))
        else:
            loss = float(F.mse_loss(out.reshape(-1), y.float().reshape(-1)))
        acc = float((out.argmax(1) == y).float().mean()) if classification else None
        return loss, acc

    def measure(
        self, *, step: int | None = None, epoch: float | None = None
    ) -> dict[str, Any] | None:
        """Measure now and append one record; returns it (``None`` on non-main processes)."""
        if self.closed:
            raise RuntimeError("the monitor is closed")
        if not self._is_main():
            self._barrier()
            return None
        t0 = time.perf_counter()
        acts, out = self._forward_probe()
        loss, acc = self._loss_and_accuracy(out)
        record: dict[str, Any] = {
            "kind": "measurement",
            "run": self.run,
            "index": self._count,
            "step": step,
            "epoch": epoch,
            "loss": loss,
            "accuracy": acc,
            "ib_convention": "per_call",
            "ib": {},
            "gib": {},
        }
        x_ib = self._x_codes
        for est in self.estimators:
            x_side = x_ib if isinstance(est, BinningEstimator) else self.features
            record["ib"][est.name] = (
                {
                    layer: self._ib(est, x_side, t) | {"convention": "per_call"}
                    for layer, t in acts.items()
                }
                if "per_call" in self.conventions
                else {}
            )
            opts = dict(self.gib_options)
            z_code = opts.pop("z_code", "auto")
            if z_code == "auto":
                z_code = default_z_code(est)
            d = self._gib(est, out, z_code, opts)
            if self.argmax_reading and self._classification and z_code not in ("argmax", "soft"):
                # the same plane with Z coded by the decision alone: a drop that this reading
                # does not share is the softmax saturating, not the features losing information
                a = self._gib(est, out, "argmax", opts)
                d["argmax"] = {
                    "prediction": a["prediction"],
                    "complexity": a["complexity"],
                    "h_q": a["diagnostics"]["h_q"],
                    "n_z_codes": a["diagnostics"]["n_z_codes"],
                }
                if "null" in a:
                    d["argmax"]["null"] = {k: a["null"][k] for k in ("complexity", "prediction")}
            record["gib"][est.name] = d
        if self.losses:
            record["losses"] = {
                name: loss.measure(self._loss_inputs(loss), out, self.y).as_dict()
                for name, loss in self.losses.items()
            }
        if "run_range" in self.conventions:
            self._keep(acts, step, epoch)
        record["seconds"] = time.perf_counter() - t0
        self._count += 1
        self._emit(record)
        if self.accelerator is not None:
            self.accelerator.log(record_scalars(record), step=step)
        self._barrier()
        return record

    def _ib(self, est: Estimator, x_side: np.ndarray, t: np.ndarray) -> dict[str, Any]:
        """Plug-in IB terms of one layer, with the shuffled null beside them."""
        if not self.null:
            return ib(x_side, t, self.y_np, estimator=est).as_dict()
        d = ib(
            x_side, t, self.y_np, estimator=est, bias_correction="shuffle", n_shuffles=self.null
        ).as_dict()
        null = d["diagnostics"].pop("null")
        d["complexity"] += null["complexity"]  # back to the plug-in values
        d["prediction"] += null["prediction"]
        d["null"] = null
        return d

    def _gib(
        self, est: Estimator, out: torch.Tensor, z_code: str, opts: dict[str, Any]
    ) -> dict[str, Any]:
        """Plug-in GIB terms of the outputs under one coding, with the shuffled null beside them."""
        keep_plugin = self.null > 0 and "bias_correction" not in opts and z_code != "soft"
        if keep_plugin:
            opts = opts | {"bias_correction": "shuffle", "n_shuffles": self.null}
        g = gib(self.features, out.numpy(), self.y_np, estimator=est, z_code=z_code, **opts)
        d = g.as_dict()
        if keep_plugin:  # the plane stays the paper's plug-in values; the null beside them
            d = _plugin_with_null(d)
        d["diagnostics"].pop("complement_unique_fraction", None)
        return d

    def _loss_inputs(self, loss: Any) -> Any:
        """What a loss's ``x`` is on the probe: raw inputs for its own reducer, else features."""
        return self.x if getattr(loss, "reducer", None) is not None else self.features

    def step(self, step: int, *, epoch: float | None = None) -> dict[str, Any] | None:
        """Measure when ``step % every == 0`` (call it every training step); else do nothing."""
        if step % self.every:
            return None
        return self.measure(step=step, epoch=epoch)

    def _keep(self, acts: dict[str, np.ndarray], step: int | None, epoch: float | None) -> None:
        meta = {"index": self._count, "step": step, "epoch": epoch}
        small = {k: _compact(v) for k, v in acts.items()}
        if self.activations_dir is None:
            self._memory_activations.append(small)
            self._meta.append(meta)
            return
        self.activations_dir.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            self.activations_dir / f"m{self._count:06d}.npz",
            meta=np.array([meta["index"], -1 if step is None else step]),
            epoch=np.array(np.nan if epoch is None else epoch),
            **small,
        )

    # -- the run-wide binning convention ----------------------------------------------------

    def finalize(self) -> list[dict[str, Any]]:
        """Append IB records with one bin range per layer over the whole run (Saxe et al.)."""
        if "run_range" not in self.conventions or not self._is_main():
            return []
        if self.activations_dir is not None:
            recs = recompute_run_range(
                self.path, self.y_np, self.x_rows, bins=self.bins, run=self.run, write=True
            )
            self.records.extend(recs)
            return recs
        recs = _run_range_records(
            self._memory_activations, self._meta, self.y_np, self.x_rows, self.bins, self.run
        )
        self.records.extend(recs)
        return recs

    def close(self) -> None:
        """Remove the hooks and append the run-range IB records (idempotent)."""
        if self.closed:
            return
        for h in self._handles:
            h.remove()
        self._handles = []
        try:
            self.finalize()
        finally:
            self.closed = True

    def __enter__(self) -> InformationPlaneMonitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _plugin_with_null(d: dict[str, Any]) -> dict[str, Any]:
    """A shuffle-corrected ``GIBResult.as_dict()`` turned back into plug-in terms + ``"null"``."""
    null = d["diagnostics"].pop("null")
    d["prediction"] = null["uncorrected_prediction"]
    d["complexity"] = d["complexity"] + null["complexity"]
    d["objective"] = d["prediction"] - d["complexity"]
    d["single"] = null["uncorrected_single"]
    d["complement"] = null["uncorrected_complement"]
    d["whole"] = null["uncorrected_whole"]
    d["null"] = {k: null[k] for k in ("complexity", "prediction", "single", "complement")}
    return d


def _compact(a: np.ndarray) -> np.ndarray:
    """``a`` in the smallest float dtype (float16, float32, float64) that holds it finitely.

    Activations are kept small on disk; one above float16's 65504 (a regression output in raw
    units, an unnormalised layer) would become inf there and break the run-wide range.
    """
    a = np.asarray(a)
    peak = float(np.abs(a).max()) if a.size else 0.0
    for dt in (np.float16, np.float32):
        if peak <= float(np.finfo(dt).max):
            return a.astype(dt)
    return a.astype(np.float64)


def _run_range_records(
    activations: list[dict[str, np.ndarray]],
    meta: list[dict[str, Any]],
    y: np.ndarray,
    x_rows: np.ndarray,
    bins: int,
    run: str,
) -> list[dict[str, Any]]:
    if not activations:
        return []
    _, inv = np.unique(x_rows, axis=0, return_inverse=True)
    x_codes = inv.reshape(-1, 1).astype(np.int64)  # IB's X: each distinct input one state
    layers = activations[0].keys()
    ranges = {}
    for layer in layers:
        lo = min(float(a[layer].astype(np.float64).min()) for a in activations)
        hi = max(float(a[layer].astype(np.float64).max()) for a in activations)
        ranges[layer] = (lo, hi if hi > lo else lo + 1.0)
    out = []
    for acts, m in zip(activations, meta, strict=True):
        ib_terms = {}
        for layer in layers:
            est = BinningEstimator(bins=bins, strategy="fixed", range=ranges[layer])
            ib_terms[layer] = ib(
                x_codes, acts[layer].astype(np.float64), y, estimator=est
            ).as_dict() | {"convention": "run_range"}
        out.append(
            {
                "kind": "ib_run_range",
                "run": run,
                "index": m["index"],
                "step": m["step"],
                "epoch": m["epoch"],
                "ib_convention": "run_range",
                "ranges": {k: list(v) for k, v in ranges.items()},
                "ib": {"binning": ib_terms},
            }
        )
    return out


def _fresh_run(path: Path, run: str, overwrite: bool) -> str:
    """The run id a new run in ``path`` gets: ``run`` when unused (or overwritten), else the
    first free ``run-k``, with a warning."""
    records = read_records(path)
    used = {str(r.get("run")) for r in records}
    if run not in used:
        return run
    if overwrite:
        kept = [r for r in records if str(r.get("run")) != run]
        tmp = path.with_name(path.name + ".tmp")
        tmp.unlink(missing_ok=True)
        for r in kept:
            append_record(tmp, r)
        os.replace(tmp, path)  # atomic: the file holds either the old or the new records
        old = _activations_dir(path, run)
        if old.exists():
            shutil.rmtree(old)
        return run
    k = 2
    while f"{run}-{k}" in used:
        k += 1
    new = f"{run}-{k}"
    warnings.warn(
        f"{path} already holds run {run!r}; this run is recorded as {new!r} (pass resume=True "
        "to continue the old run, or overwrite=True to replace it)",
        UserWarning,
        stacklevel=3,
    )
    return new


def _activations_dir(path: Path, run: str) -> Path:
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in run)
    return path.with_name(path.stem + ".activations") / safe


def recompute_run_range(
    path: str | Path,
    y: Any,
    x: Any,
    *,
    bins: int = 30,
    run: str | None = None,
    write: bool = True,
) -> list[dict[str, Any]]:
    """Recompute IB with one bin range per layer over a run, from the kept activations.

    Parameters
    ----------
    path : str or Path
        The run's JSON Lines file; activations are read from ``<stem>.activations/<run>/``.
    y, x : array-like
        The probe's targets and inputs (the same probe the monitor used).
    bins : int
        Number of bins over each layer's run-wide range.
    run : str, optional
        Run identifier (default: the header's).
    write : bool
        Append the new records to ``path``.

    Returns
    -------
    list of dict
        One ``"ib_run_range"`` record per kept measurement.
    """
    path = Path(path)
    if run is None:
        headers = [r for r in read_records(path) if r.get("kind") == "header"]
        run = headers[0]["run"] if headers else "run"
    adir = _activations_dir(path, run)
    files = sorted(adir.glob("m*.npz"))
    if not files:
        raise FileNotFoundError(f"no kept activations under {adir}")
    acts, meta = [], []
    for f in files:
        with np.load(f) as z:
            idx, step = (int(v) for v in z["meta"])
            epoch = float(z["epoch"])
            acts.append({k: z[k] for k in z.files if k not in ("meta", "epoch")})
        meta.append(
            {
                "index": idx,
                "step": None if step < 0 else step,
                "epoch": None if np.isnan(epoch) else epoch,
            }
        )
    x_rows = as_array(np.asarray(x).reshape(len(acts[0]["output"]), -1), "x")
    recs = _run_range_records(acts, meta, np.asarray(y), x_rows, bins, run)
    if write:
        for r in recs:
            append_record(path, r)
    return recs

"""From activations to one record: the monitor's measurements, as pure functions.

:func:`measurement_record` turns a probe's activations, outputs, GIB features and labels into the
IB and GIB terms of one measurement (with their shuffled nulls and diagnostics), through
:func:`gibloss.ib` and :func:`gibloss.gib`, the same estimator core the rest of the package uses.
:func:`run_range_records` does the same for IB with one bin range per layer over a whole run.
Nothing here hooks a model or touches a file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .._validation import as_array, check_same_length, single_logit_is_binary
from ..estimators import BinningEstimator, Estimator, get_estimator
from ..information import ib, input_row_codes
from ..measures import default_z_code, gib
from ..reduction import PCAReducer, Reducer
from ..spec import GIBSpec

__all__ = ["Probe", "measurement_record", "record_scalars", "run_range_records"]


@dataclass(frozen=True)
class Probe:
    """The fixed rows a monitor measures on, in the forms the measures read.

    Build it with :meth:`from_data`. ``x``/``y`` are the model's inputs and targets;
    ``x_codes`` the row identity of the inputs (IB's X for binning); ``features`` the GIB input
    features ``(n, N)``.
    """

    x: torch.Tensor
    y: torch.Tensor
    y_np: np.ndarray
    x_rows: np.ndarray
    x_codes: np.ndarray
    features: np.ndarray
    features_desc: str

    @classmethod
    def from_data(cls, probe: Any, features: Any = None) -> Probe:
        """Check ``probe = (x, y)`` and resolve the GIB features.

        ``features``: an ``(n, N)`` array, a :class:`~gibloss.Reducer` (fitted on the probe if
        not yet), or None: the flattened inputs when they have at most 64 columns, else PCA-50
        fitted once on the probe.
        """
        if not isinstance(probe, (tuple, list)) or len(probe) != 2:
            raise TypeError("`probe` must be a pair (x, y)")
        x, y = probe
        x = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
        y = y if isinstance(y, torch.Tensor) else torch.as_tensor(np.asarray(y))
        n = check_same_length(x=x, y=y.reshape(len(y), -1))
        if n < 2:
            raise ValueError(f"`probe` needs at least 2 samples, got {n}")
        y_np = y.detach().cpu().numpy()
        x_rows = as_array(x.detach().cpu().reshape(n, -1).numpy(), "probe x")
        feats, desc = _resolve_features(features, x_rows)
        return cls(
            x=x,
            y=y,
            y_np=y_np,
            x_rows=x_rows,
            x_codes=input_row_codes(x_rows),
            features=feats,
            features_desc=desc,
        )


def _resolve_features(features: Any, x_rows: np.ndarray) -> tuple[np.ndarray, str]:
    if features is None:
        if x_rows.shape[1] <= 64:
            return x_rows.astype(np.float64), f"probe inputs ({x_rows.shape[1]} columns)"
        features = PCAReducer(n_components=50)
    if isinstance(features, Reducer):
        if features.n_features_in_ is None:
            features.fit(x_rows)
        return np.asarray(features.transform(x_rows), dtype=np.float64), repr(features)
    arr = as_array(
        features.detach().cpu() if isinstance(features, torch.Tensor) else features, "features"
    )
    if arr.shape[0] != x_rows.shape[0]:
        raise ValueError(f"`features` has {arr.shape[0]} rows, the probe has {x_rows.shape[0]}")
    return arr.astype(np.float64), f"given ({arr.shape[1]} columns)"


def loss_and_accuracy(
    out: torch.Tensor,
    y: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    task: str = "auto",
) -> tuple[float, float | None]:
    """Probe loss and accuracy (None unless the model is a classifier).

    Without ``loss_fn``: cross-entropy for logits ``(n, k)`` and integer labels;
    ``BCEWithLogitsLoss`` for one logit beside 0/1 labels (integer or float, the package's one
    rule, :func:`gibloss._validation.single_logit_is_binary`, with ``task``); else MSE.

    Raises
    ------
    ValueError
        Float probe labels ``(n,)`` beside ``k >= 2`` output columns (logits want integer
        labels; no loss can pair them).
    """
    y = y.detach().cpu()
    multi = out.ndim == 2 and out.shape[1] >= 2
    if multi and y.dtype.is_floating_point and y.reshape(len(y), -1).shape[1] == 1:
        raise ValueError(
            f"the probe labels `y` are float ({y.dtype}) but the model has {out.shape[1]} output "
            "columns (logits, one per class): give the probe integer labels (y.long()); for a "
            "multi-output regression give `y` the outputs' shape"
        )
    binary = not multi and single_logit_is_binary(y, task, name="probe y", outputs="outputs")
    if loss_fn is not None:
        loss = float(loss_fn(out, y))
    elif multi and not y.dtype.is_floating_point:
        loss = float(F.cross_entropy(out, y.long()))
    elif binary:
        loss = float(F.binary_cross_entropy_with_logits(out.reshape(-1), y.double().reshape(-1)))
    else:
        loss = float(F.mse_loss(out.reshape(-1), y.float().reshape(-1)))
    if multi and not y.dtype.is_floating_point:
        acc = float((out.argmax(1) == y).float().mean())
    elif binary:
        acc = float(((out.reshape(-1) > 0).long() == y.reshape(-1).long()).float().mean())
    else:
        acc = None
    return loss, acc


def measurement_record(
    activations: Mapping[str, np.ndarray],
    outputs: torch.Tensor,
    probe: Probe,
    *,
    estimators: Sequence[Estimator],
    per_call: bool = True,
    gib_options: Mapping[str, Any] | None = None,
    null: int = 1,
    argmax_reading: bool = True,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    losses: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The terms of one measurement: probe loss and accuracy, IB per layer, GIB, loss targets.

    Parameters
    ----------
    activations : mapping of str to ndarray
        Per-sample activations ``(n, d)`` of each layer (``"output"`` included).
    outputs : Tensor
        The model outputs on the probe ``(n, ...)``.
    probe : Probe
        The probe's inputs, labels and GIB features.
    estimators : sequence of Estimator
        Exact estimators; each gives its IB and GIB terms.
    per_call : bool
        Record IB with each layer's bin edges from this measurement's own range.
    gib_options : mapping, optional
        Extra keyword arguments of :func:`gibloss.gib`.
    null : int
        Shuffles of the shuffled-label null recorded beside every term (0: none).
    argmax_reading : bool
        For a classifier whose outputs are coded otherwise than by their argmax, also record the
        plane with Z coded by the decision alone.
    loss_fn : callable, optional
        Probe loss ``loss_fn(outputs, y)``.
    losses : mapping of str to GIBLoss, optional
        Regularisers whose target (``loss.measure``) is recorded on the probe.

    Returns
    -------
    dict
        ``loss``, ``accuracy``, ``ib_convention``, ``ib`` (``{est: {layer: terms}}``), ``gib``
        (``{est: terms}``) and, with ``losses``, ``losses``.
    """
    spec = gib_options if isinstance(gib_options, GIBSpec) else None
    task = spec.task if spec is not None else (gib_options or {}).get("task", "auto")
    loss, acc = loss_and_accuracy(outputs, probe.y, loss_fn, task=task)
    record: dict[str, Any] = {
        "loss": loss,
        "accuracy": acc,
        "ib_convention": "per_call",
        "ib": {},
        "gib": {},
    }
    for est in estimators:
        x_side = probe.x_codes if est.discrete else probe.features
        record["ib"][est.name] = (
            {
                layer: _ib_terms(est, x_side, t, probe.y_np, null) | {"convention": "per_call"}
                for layer, t in activations.items()
            }
            if per_call
            else {}
        )
        if spec is None:
            opts = dict(gib_options or {})
            argmax = argmax_reading and acc is not None
            record["gib"][est.name] = _gib_reading(probe, outputs, opts, est, null, argmax)
    if spec is not None:  # the GIB of one spec (a loss's, say), beside every estimator's IB
        record["gib"][spec.estimator] = _gib_reading(
            probe, outputs, {"spec": spec}, None, null, argmax_reading and acc is not None
        )
    if losses:
        record["losses"] = {
            # a loss with its own reducer reads the raw inputs, any other the probe's features
            name: loss.measure(
                probe.x if getattr(loss, "reducer", None) is not None else probe.features,
                outputs,
                probe.y,
            ).as_dict()
            for name, loss in losses.items()
        }
    return record


def _ib_terms(
    est: Estimator, x_side: np.ndarray, t: np.ndarray, y: np.ndarray, null: int
) -> dict[str, Any]:
    """Plug-in IB terms of one layer, with the shuffled null beside them."""
    d = ib(x_side, t, y, estimator=est, null=null).as_dict()
    if null:
        d["null"] = d["diagnostics"].pop("null")
    return d


def _gib_reading(
    probe: Probe,
    outputs: torch.Tensor,
    opts: dict[str, Any],
    est: Estimator | None,
    null: int,
    argmax_reading: bool,
) -> dict[str, Any]:
    """The GIB record of one estimator (``est`` with ``opts``) or one spec (``opts["spec"]``),
    and, for outputs coded otherwise than by their argmax, the argmax reading beside it."""
    spec = opts.get("spec")
    if spec is not None:
        z_code = spec.z_code
        if z_code == "auto":
            z_code = default_z_code(get_estimator(spec.estimator, **spec.estimator_options()))
            opts = {"spec": spec.replace(z_code=z_code)}
        argmax_opts = {"spec": spec.replace(z_code="argmax")}
    else:
        z_code = opts.pop("z_code", "auto")
        if z_code == "auto":
            z_code = default_z_code(est)
        opts = {**opts, "estimator": est, "z_code": z_code}
        argmax_opts = {**opts, "z_code": "argmax"}
    d = _gib_terms(probe, outputs, z_code, opts, null)
    if argmax_reading and z_code not in ("argmax", "soft"):
        # the same plane with Z coded by the decision alone: a drop that this reading does
        # not share is the softmax saturating, not the features losing information
        a = _gib_terms(probe, outputs, "argmax", argmax_opts, null)
        d["argmax"] = {
            "prediction": a["prediction"],
            "complexity": a["complexity"],
            "h_q": a["diagnostics"]["h_q"],
            "n_z_codes": a["diagnostics"]["n_z_codes"],
        }
        if "null" in a:
            d["argmax"]["null"] = {k: a["null"][k] for k in ("complexity", "prediction")}
    return d


def _gib_terms(
    probe: Probe,
    out: torch.Tensor,
    z_code: str,
    opts: dict[str, Any],
    null: int,
) -> dict[str, Any]:
    """Plug-in GIB terms of the outputs under one coding, with the shuffled null beside them."""
    beside = null > 0 and "bias_correction" not in opts and z_code != "soft"
    d = gib(probe.features, out.numpy(), probe.y_np, **opts, null=null if beside else 0).as_dict()
    if beside:  # the plane stays the paper's plug-in values; the null beside them
        nl = d["diagnostics"].pop("null")
        d["null"] = {k: nl[k] for k in ("complexity", "prediction", "single", "complement")}
    d["diagnostics"].pop("complement_unique_fraction", None)
    return d


def run_range_records(
    activations: Sequence[Mapping[str, np.ndarray]],
    meta: Sequence[Mapping[str, Any]],
    y: np.ndarray,
    x_rows: np.ndarray,
    bins: int,
    run: str,
) -> list[dict[str, Any]]:
    """IB records with one bin range per layer over a whole run (Saxe et al.).

    ``activations[i]`` are the layers of measurement ``meta[i]`` (``index``, ``step``,
    ``epoch``); each layer's range is its minimum and maximum over all of them.
    """
    if not activations:
        return []
    x_codes = input_row_codes(x_rows)
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


def record_scalars(record: Mapping[str, Any]) -> dict[str, float]:
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

"""The hook recorder: per-sample activations of chosen layers while a probe runs through a model.

:class:`ActivationRecorder` registers forward hooks on named modules; calling it runs the probe
through the model (eval mode, no gradient, every module's training flag restored afterwards) and
returns ``{layer: (n, d) array}`` plus the model outputs. It knows nothing of information
measures or files.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["ActivationRecorder", "default_layers", "output_tensor"]

_DEFAULT_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
REDUCE_CONV = ("mean", "flatten")


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


def output_tensor(out: Any) -> torch.Tensor:
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


class ActivationRecorder:
    """Record per-sample activations of named layers while inputs run through a model.

    Parameters
    ----------
    model : torch.nn.Module
        The (unwrapped) model.
    layers : sequence of str, optional
        Module names to hook; default :func:`default_layers`.
    reduce_conv : {"mean", "flatten"}
        How conv feature maps become per-sample vectors.
    batch_size : int
        Rows per forward pass.

    Examples
    --------
    >>> import torch
    >>> from gibloss.monitor import ActivationRecorder
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    >>> with ActivationRecorder(model, ["0"]) as rec:
    ...     acts, out = rec(torch.randn(10, 4))
    >>> sorted(acts), acts["0"].shape, tuple(out.shape)
    (['0', 'output'], (10, 8), (10, 2))
    """

    def __init__(
        self,
        model: nn.Module,
        layers: Sequence[str] | None = None,
        *,
        reduce_conv: str = "mean",
        batch_size: int = 1024,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"`model` must be a torch.nn.Module, got {type(model).__name__}")
        if reduce_conv not in REDUCE_CONV:
            raise ValueError(f"`reduce_conv` must be 'mean' or 'flatten', got {reduce_conv!r}")
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}")
        names = list(layers) if layers is not None else default_layers(model)
        modules = dict(model.named_modules())
        missing = [nm for nm in names if nm not in modules]
        if missing:
            raise ValueError(
                f"`layers` {missing} are not modules of the model; "
                f"available: {sorted(k for k in modules if k)[:20]}"
            )
        self.model = model
        self.layer_names = names
        self.reduce_conv = reduce_conv
        self.batch_size = batch_size
        self._capture: dict[str, list[torch.Tensor]] | None = None
        self._mask: torch.Tensor | None = None
        self._handles = [modules[nm].register_forward_hook(self._hook(nm)) for nm in names]

    def _hook(self, name: str) -> Callable[..., None]:
        def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
            if self._capture is not None:
                self._capture.setdefault(name, []).append(
                    _summarise(output_tensor(output), self.reduce_conv, self._mask)
                )

        return hook

    def __call__(self, x: torch.Tensor) -> tuple[dict[str, np.ndarray], torch.Tensor]:
        """Run ``x`` through the model; return ``({layer: (n, d)}, outputs)``.

        The activations include the flattened outputs as layer ``"output"`` (a hooked module
        whose activations equal the outputs, such as the last Linear, appears only there);
        ``outputs`` are
        float32 on the CPU. Token ids of a 🤗 model are passed with their attention mask (from
        the config's ``pad_token_id``), and token states are averaged over the unmasked tokens.
        """
        if not self._handles and self.layer_names:
            raise RuntimeError("the recorder's hooks were removed")
        model = self.model
        modes = {m: m.training for m in model.modules()}
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        self._capture = {}
        outputs = []
        try:
            model.eval()
            with torch.no_grad():
                for s in range(0, len(x), self.batch_size):
                    batch = x[s : s + self.batch_size].to(device)
                    mask = self._mask = _token_mask(model, batch)
                    out = model(batch) if mask is None else model(batch, attention_mask=mask)
                    outputs.append(output_tensor(out).detach().float().cpu())
            acts = {k: torch.cat(v).numpy() for k, v in self._capture.items()}
        finally:
            self._capture = None
            self._mask = None
            for m, mode in modes.items():
                m.train(mode)
        out = torch.cat(outputs)
        flat = out.reshape(len(out), -1).numpy()
        # a hooked module whose output is the model's (the last Linear) is drawn and measured
        # once, as "output"
        for name in [k for k, a in acts.items() if a.shape == flat.shape]:
            if np.array_equal(acts[name].astype(np.float32), flat):
                del acts[name]
        acts["output"] = flat
        return acts, out

    def remove(self) -> None:
        """Remove the hooks (idempotent)."""
        for h in self._handles:
            h.remove()
        self._handles = []

    def __enter__(self) -> ActivationRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

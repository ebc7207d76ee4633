"""Adversarial robustness: clean, FGSM and PGD accuracy through torchattacks.

Models are evaluated the RobustBench way: they take inputs in ``[0, 1]`` (any normalisation happens
inside the model, e.g. :class:`gibloss.models.Normalized`) and run in eval mode. Inputs outside
``[0, 1]`` and models whose outputs do not fit the labels are rejected with a clear error.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["RobustnessResult", "check_inputs", "evaluate_robustness", "mean_ci", "paired_ci"]


@dataclass
class RobustnessResult:
    """Accuracy under attack.

    Attributes
    ----------
    clean : float
        Accuracy on the unperturbed inputs.
    fgsm, pgd : dict
        ``{eps: accuracy}``.
    settings : dict
        Attack parameters used.
    """

    clean: float
    fgsm: dict[float, float] = field(default_factory=dict)
    pgd: dict[float, float] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)


def check_inputs(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    """Validate a robustness evaluation's inputs; return the number of classes.

    Raises
    ------
    TypeError
        When ``x``/``y`` are not tensors or ``y`` is not integer labels.
    ValueError
        When ``x`` is outside ``[0, 1]`` or has NaN, lengths differ, or the model's output is not
        ``(n, k)`` with ``k`` larger than every label.
    """
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError("`x` and `y` must be torch tensors")
    if y.dtype.is_floating_point:
        raise TypeError(f"`y` must hold integer class labels, got dtype {y.dtype}")
    if len(x) != len(y):
        raise ValueError(f"`x` has {len(x)} samples, `y` has {len(y)}")
    if len(x) == 0:
        raise ValueError("`x` is empty")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("`x` contains NaN or infinite values")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(
            f"`x` must lie in [0, 1] (RobustBench convention: normalise inside the model), got "
            f"range [{lo:.3g}, {hi:.3g}]"
        )
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    with torch.no_grad():
        out = model(x[:2].to(device))
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != min(2, len(x)):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"the model must return logits of shape (n, k), got {shape}")
    k = out.shape[1]
    if int(y.max()) >= k or int(y.min()) < 0:
        raise ValueError(
            f"labels must lie in [0, {k}) for a model with {k} outputs, got range "
            f"[{int(y.min())}, {int(y.max())}]"
        )
    return k


def _accuracy(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    batch: int,
    device: torch.device,
    attack: Any = None,
) -> float:
    correct = 0
    for s in range(0, len(x), batch):
        xb, yb = x[s : s + batch].to(device), y[s : s + batch].to(device)
        if attack is not None:
            xb = attack(xb, yb)
        with torch.no_grad():
            correct += int((model(xb).argmax(1) == yb).sum())
    return correct / len(x)


def evaluate_robustness(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: Sequence[float] = (0.0, 0.01, 0.03, 0.1),
    *,
    pgd_steps: int = 10,
    pgd_alpha: float | None = None,
    attacks: Sequence[str] = ("fgsm", "pgd"),
    batch_size: int = 256,
    seed: int = 0,
) -> RobustnessResult:
    """Clean accuracy, FGSM over ``eps`` and PGD-``pgd_steps`` (L∞) through torchattacks.

    Parameters
    ----------
    model : torch.nn.Module
        Takes inputs in ``[0, 1]`` and returns logits; evaluated in eval mode (its mode is
        restored afterwards).
    x, y : torch.Tensor
        Inputs in ``[0, 1]`` and integer labels.
    eps : sequence of float
        L∞ budgets (in input units).
    pgd_steps : int
        PGD iterations (random start).
    pgd_alpha : float, optional
        PGD step size; default ``2.5 * eps / pgd_steps`` (Madry et al.).
    attacks : sequence of {"fgsm", "pgd"}
        Which attacks to run.
    batch_size : int
        Rows per attack batch.
    seed : int
        Seeds PGD's random start.

    Returns
    -------
    RobustnessResult
    """
    import torchattacks

    bad = [a for a in attacks if a not in ("fgsm", "pgd")]
    if bad:
        raise ValueError(f"`attacks` must be a subset of ('fgsm', 'pgd'), got {bad}")
    if any(not math.isfinite(e) or e < 0 for e in eps):
        raise ValueError(f"`eps` must be non-negative finite numbers, got {list(eps)}")
    check_inputs(model, x, y)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        result = RobustnessResult(clean=_accuracy(model, x, y, batch_size, device))
        for e in eps:
            if "fgsm" in attacks:
                atk = torchattacks.FGSM(model, eps=e)
                result.fgsm[float(e)] = _accuracy(model, x, y, batch_size, device, atk)
            if "pgd" in attacks:
                if e == 0:
                    result.pgd[0.0] = result.clean
                    continue
                alpha = pgd_alpha if pgd_alpha is not None else 2.5 * e / pgd_steps
                torch.manual_seed(seed)
                atk = torchattacks.PGD(
                    model, eps=e, alpha=alpha, steps=pgd_steps, random_start=True
                )
                result.pgd[float(e)] = _accuracy(model, x, y, batch_size, device, atk)
        result.settings = {
            "pgd_steps": pgd_steps,
            "pgd_alpha": pgd_alpha or "2.5*eps/steps",
            "attacks": list(attacks),
            "n": len(x),
        }
    finally:
        for m, mode in modes.items():
            m.train(mode)
    return result


def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t confidence interval ``(mean, low, high)`` over seeds.

    With one value the interval is ``(nan, nan)``: one seed says nothing about spread.
    """
    from scipy.stats import t

    v = np.asarray(values, dtype=float)
    m = float(v.mean())
    if v.size < 2:
        return m, float("nan"), float("nan")
    half = float(t.ppf(0.5 + level / 2, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return m, m - half, m + half


def paired_ci(
    a: Sequence[float], b: Sequence[float], level: float = 0.95
) -> tuple[float, float, float]:
    """Mean difference ``a - b`` over paired seeds with its Student-t interval."""
    if len(a) != len(b):
        raise ValueError(f"paired values must have equal lengths, got {len(a)} and {len(b)}")
    return mean_ci(np.asarray(a, dtype=float) - np.asarray(b, dtype=float), level)

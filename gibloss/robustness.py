"""Adversarial robustness: clean, FGSM, PGD and Square accuracy through torchattacks.

Models are evaluated the RobustBench way: they take inputs in ``[0, 1]`` (any normalisation happens
inside the model, e.g. a first module that subtracts the mean and divides by the standard
deviation) and run in eval mode. Inputs outside ``[0, 1]`` and models whose outputs do not fit the
labels are rejected with a clear error.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
    "ATTACKS",
    "RobustnessResult",
    "at_confidence",
    "check_inputs",
    "evaluate_robustness",
    "mean_ci",
    "paired_ci",
]


ATTACKS = ("fgsm", "pgd", "square")


@dataclass
class RobustnessResult:
    """Accuracy under attack.

    Attributes
    ----------
    clean : float
        Accuracy on the unperturbed inputs.
    fgsm, pgd, square : dict
        ``{eps: accuracy}`` for each attack that was run (``square``: the gradient-free Square
        attack, on ``settings["square_n"]`` rows).
    settings : dict
        Attack parameters used.

    Examples
    --------
    >>> r = RobustnessResult(clean=0.9, fgsm={0.1: 0.41}, pgd={0.1: 0.3})
    >>> print(r.table())
    | eps | FGSM | PGD |
    |---|---|---|
    | 0 (clean) | 0.900 | 0.900 |
    | 0.1 | 0.410 | 0.300 |
    """

    clean: float
    fgsm: dict[float, float] = field(default_factory=dict)
    pgd: dict[float, float] = field(default_factory=dict)
    square: dict[float, float] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dictionary (eps keys become strings)."""
        out: dict[str, Any] = {"clean": self.clean}
        for name in ATTACKS:
            out[name] = {str(e): acc for e, acc in getattr(self, name).items()}
        out["settings"] = dict(self.settings)
        return out

    def table(self) -> str:
        """A Markdown table: one row per eps, one column per attack, 3 decimals."""
        names = [a for a in ATTACKS if getattr(self, a)]
        eps = sorted({e for a in names for e in getattr(self, a)} - {0.0})
        head = "| eps | " + " | ".join(n.upper() if n != "square" else "Square" for n in names)
        lines = [head + " |", "|---|" + "---|" * len(names)]
        lines.append("| 0 (clean) | " + " | ".join(f"{self.clean:.3f}" for _ in names) + " |")
        for e in eps:
            cells = [getattr(self, n).get(e) for n in names]
            lines.append(
                f"| {e:g} | "
                + " | ".join("—" if c is None else f"{c:.3f}" for c in cells)
                + " |"
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        n = self.settings.get("n", "?")
        return f"RobustnessResult(clean={self.clean:.3f}, n={n})\n{self.table()}"


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


def _correct(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    batch: int,
    device: torch.device,
    attack: Any = None,
) -> torch.Tensor:
    """Per-row correctness (bool, on the CPU) of the model on ``x``, attacked if given."""
    out = []
    for s in range(0, len(x), batch):
        xb, yb = x[s : s + batch].to(device), y[s : s + batch].to(device)
        if attack is not None:
            xb = attack(xb, yb)
        with torch.no_grad():
            out.append((model(xb).argmax(1) == yb).cpu())
    return torch.cat(out)


def _rate(correct: torch.Tensor) -> float:
    """The fraction of ``True`` rows, as an exact ratio of counts."""
    return int(correct.sum()) / len(correct)


class _FlatInput(nn.Module):
    """``model`` seen through ``(n, 1, 1, d)`` inputs, for attacks written for images."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.reshape(len(x), -1))


def _as_eps(eps: float | Sequence[float]) -> list[float]:
    """``eps`` as a list of budgets in ``[0, 1]`` (a scalar is one budget)."""
    values = [eps] if isinstance(eps, (int, float)) and not isinstance(eps, bool) else eps
    try:
        out = [float(e) for e in values]  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise TypeError(f"`eps` must be a number or a sequence of numbers, got {eps!r}") from None
    if not out:
        raise ValueError("`eps` must hold at least one budget")
    bad = [e for e in out if not math.isfinite(e) or e < 0 or e > 1]
    if bad:
        raise ValueError(
            f"`eps` must lie in [0, 1]: inputs are in [0, 1], so a budget is in input units "
            f"(8/255 = {8 / 255:.4f} for 8 grey levels); got {bad}"
        )
    return out


def evaluate_robustness(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float | Sequence[float] = (0.0, 0.01, 0.03, 0.1),
    *,
    pgd_steps: int = 10,
    pgd_alpha: float | None = None,
    pgd_restarts: int = 1,
    attacks: Sequence[str] = ("fgsm", "pgd"),
    square_queries: int = 1000,
    square_n: int | None = None,
    batch_size: int = 256,
    seed: int = 0,
) -> RobustnessResult:
    """Clean accuracy and accuracy under L∞ attacks (FGSM, PGD, Square) through torchattacks.

    Parameters
    ----------
    model : torch.nn.Module
        Takes inputs in ``[0, 1]`` and returns logits; evaluated in eval mode (its mode is
        restored afterwards). A model trained on normalised inputs is wrapped so that the
        normalisation happens inside (a first module that subtracts the mean and divides by the
        standard deviation): the budgets then stay in input units.
    x, y : torch.Tensor
        Inputs in ``[0, 1]`` and integer labels.
    eps : float or sequence of float
        L∞ budgets in input units, each in ``[0, 1]``.
    pgd_steps : int
        PGD iterations (random start).
    pgd_alpha : float, optional
        PGD step size; default ``2.5 * eps / pgd_steps`` (Madry et al.).
    pgd_restarts : int
        PGD runs from independent random starts; a row counts as robust only if it survives all.
    attacks : sequence of {"fgsm", "pgd", "square"}
        Which attacks to run. ``"square"`` is the gradient-free Square attack (Andriushchenko et
        al., 2020; part of AutoAttack): a gain under FGSM/PGD that it does not confirm points to
        gradient masking.
    square_queries : int
        Query budget of the Square attack.
    square_n : int, optional
        Rows attacked by Square (the first ``square_n``; default all): it costs one forward pass
        per query.
    batch_size : int
        Rows per attack batch.
    seed : int
        Seeds PGD's random starts and Square, inside a forked RNG: the caller's global random
        state is left as it was.

    Returns
    -------
    RobustnessResult

    Examples
    --------
    >>> import torch
    >>> from gibloss.robustness import evaluate_robustness
    >>> _ = torch.manual_seed(0)
    >>> model = torch.nn.Sequential(torch.nn.Linear(8, 3))
    >>> x, y = torch.rand(50, 8), torch.randint(0, 3, (50,))
    >>> res = evaluate_robustness(model, x, y, 0.1, pgd_steps=2)
    >>> sorted(res.pgd) == [0.1] and 0.0 <= res.pgd[0.1] <= res.clean
    True
    """
    try:
        import torchattacks
    except ImportError as err:  # an optional dependency: say how to install it
        raise ImportError(
            "evaluate_robustness needs torchattacks: pip install --no-deps torchattacks==3.5.1 "
            "(its pinned requests conflicts with other packages; it imports none of its "
            "dependencies at run time); `make venv` installs it"
        ) from err

    bad = [a for a in attacks if a not in ATTACKS]
    if bad:
        raise ValueError(f"`attacks` must be a subset of {ATTACKS}, got {bad}")
    budgets = _as_eps(eps)
    for name, value in (
        ("pgd_steps", pgd_steps),
        ("pgd_restarts", pgd_restarts),
        ("square_queries", square_queries),
        ("batch_size", batch_size),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"`{name}` must be a positive integer, got {value!r}")
    if square_n is not None and (not isinstance(square_n, int) or square_n < 1):
        raise ValueError(f"`square_n` must be a positive integer or None, got {square_n!r}")
    check_inputs(model, x, y)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    modes = {m: m.training for m in model.modules()}
    model.eval()
    devices = [device] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            clean = _correct(model, x, y, batch_size, device)
            result = RobustnessResult(clean=_rate(clean))
            xs, ys = (x, y) if square_n is None else (x[:square_n], y[:square_n])
            for e in budgets:
                if "fgsm" in attacks:
                    atk = torchattacks.FGSM(model, eps=e)
                    result.fgsm[e] = _rate(_correct(model, x, y, batch_size, device, atk))
                if "pgd" in attacks:
                    robust = clean.clone()
                    if e > 0:
                        alpha = pgd_alpha if pgd_alpha is not None else 2.5 * e / pgd_steps
                        for r in range(pgd_restarts):
                            torch.manual_seed(seed + r)
                            atk = torchattacks.PGD(
                                model, eps=e, alpha=alpha, steps=pgd_steps, random_start=True
                            )
                            robust &= _correct(model, x, y, batch_size, device, atk)
                    result.pgd[e] = _rate(robust)
                if "square" in attacks:
                    if e > 0:
                        # torchattacks' Square works on (n, c, h, w) images: a flat input is
                        # shown to it as a 1 x d image, whose squares are single coordinates
                        flat = xs.ndim == 2
                        target = _FlatInput(model) if flat else model
                        xq = xs.reshape(len(xs), 1, 1, -1) if flat else xs
                        atk = torchattacks.Square(
                            target, norm="Linf", eps=e, n_queries=square_queries, seed=seed
                        )
                        ok = _correct(target, xq, ys, batch_size, device, atk)
                    else:
                        ok = clean[: len(xs)]
                    result.square[e] = _rate(ok)
        result.settings = {
            "attacks": list(attacks),
            "pgd_steps": pgd_steps,
            "pgd_alpha": pgd_alpha if pgd_alpha is not None else "2.5*eps/steps",
            "pgd_restarts": pgd_restarts,
            "square_queries": square_queries,
            "square_n": len(xs),
            "n": len(x),
            "seed": seed,
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


def at_confidence(confidence: float, reference: Sequence[tuple[float, float]]) -> float:
    """A reference regulariser's outcome at ``confidence``: the matched comparison.

    ``reference`` holds ``(confidence, outcome)`` points of one seed: a confidence penalty at
    several strengths, with plain training as strength 0. The outcome is interpolated linearly
    between the two points whose confidences bracket ``confidence``; outside their range it is
    NaN (no extrapolation: a setting more or less confident than every reference run has no
    match in that seed). This is the one matching rule of the package's studies
    (``evaluation/robustness.py``, ``evaluation/bench_regulariser.py``,
    ``recipes/boolean_lab.py``): a regulariser minus ``at_confidence`` of its own confidence,
    seed by seed, is its effect beyond what its confidence alone explains.

    Parameters
    ----------
    confidence : float
        The compared setting's confidence (e.g. the mean max-p on held-out rows).
    reference : sequence of (float, float)
        ``(confidence, outcome)`` of the reference runs of the same seed.

    Returns
    -------
    float
        The interpolated outcome, or NaN when no pair of reference points brackets
        ``confidence`` (or ``confidence`` is not finite).

    Examples
    --------
    >>> round(at_confidence(0.85, [(0.9, 0.10), (0.8, 0.20)]), 3)
    0.15
    >>> at_confidence(0.95, [(0.9, 0.10), (0.8, 0.20)])
    nan
    """
    points = sorted((float(c), float(v)) for c, v in reference)
    if not points or not math.isfinite(confidence):
        return float("nan")
    xs = [p[0] for p in points]
    if confidence < xs[0] - 1e-9 or confidence > xs[-1] + 1e-9:
        return float("nan")
    return float(np.interp(confidence, xs, [p[1] for p in points]))

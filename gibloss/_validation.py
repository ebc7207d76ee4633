"""Boundary checks shared by every public function.

Every public entry point converts its inputs here, so that a bad argument is reported once, with
the argument's name and what was expected, before any estimator sees it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "TASKS",
    "as_array",
    "as_labels",
    "as_weights",
    "check_same_length",
    "is_discrete",
    "check_task",
    "looks_like_probabilities",
    "single_logit_is_binary",
    "warn_probabilities",
]

#: How one output column is read: ``"auto"`` decides from the targets (see
#: :func:`single_logit_is_binary`), the other two say it.
TASKS = ("auto", "classification", "regression")


def to_numpy(a: Any, name: str) -> np.ndarray:
    """Convert numpy arrays, torch tensors and nested sequences to a numpy array."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a core dependency
        torch = None
    if torch is not None and isinstance(a, torch.Tensor):
        t = a.detach().cpu()
        if t.dtype in (torch.float16, torch.bfloat16):
            t = t.float()
        return t.numpy()
    if isinstance(a, np.ndarray):
        return a
    if isinstance(a, (list, tuple)):
        return np.asarray(a)
    raise TypeError(f"`{name}` must be a numpy array or a torch tensor, got {type(a).__name__}")


def is_discrete(a: np.ndarray) -> bool:
    """Whether an array holds symbols (integer or bool dtype) rather than continuous values."""
    return a.dtype.kind in "biu"


def as_array(a: Any, name: str, *, min_samples: int = 2) -> np.ndarray:
    """Validate a sample matrix and return it as a 2-D numpy array ``(n, d)``.

    Parameters
    ----------
    a : array-like or torch.Tensor
        Shape ``(n,)`` or ``(n, d)``; numeric or bool.
    name : str
        Argument name used in error messages.
    min_samples : int
        The smallest acceptable ``n``.

    Returns
    -------
    numpy.ndarray
        Shape ``(n, d)``. Integer and bool arrays keep an integer dtype (symbols); everything else
        is float64.
    """
    arr = to_numpy(a, name)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"`{name}` must be numeric or bool, got dtype {arr.dtype}")
    if arr.ndim == 1:
        arr = arr[:, None]
    elif arr.ndim != 2:
        raise ValueError(f"`{name}` must have shape (n,) or (n, d), got shape {arr.shape}")
    if arr.shape[1] == 0:
        raise ValueError(f"`{name}` must have at least one column, got shape {arr.shape}")
    if arr.shape[0] < min_samples:
        raise ValueError(
            f"`{name}` needs at least {min_samples} samples (rows), got {arr.shape[0]}"
        )
    if arr.dtype.kind == "b":
        arr = arr.astype(np.int64)
    elif arr.dtype.kind in "iu":
        arr = arr.astype(np.int64, copy=False)
    else:
        arr = arr.astype(np.float64, copy=False)
        if not np.all(np.isfinite(arr)):
            bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
            raise ValueError(f"`{name}` contains {bad} NaN or infinite value(s)")
    return arr


def as_labels(a: Any, name: str, *, n_classes: int | None = None) -> np.ndarray:
    """Validate class labels: a 1-D integer (or bool) array, optionally checked against a range.

    Raises
    ------
    TypeError
        When the labels are floats (classes must be integers).
    ValueError
        When the shape is not ``(n,)`` or a label lies outside ``[0, n_classes)``.
    """
    arr = to_numpy(a, name)
    if arr.dtype.kind == "f":
        raise TypeError(
            f"`{name}` must hold integer class labels, got float dtype {arr.dtype}; "
            "cast with .astype(int) / .long() if the values are whole numbers"
        )
    if arr.dtype.kind not in "biu":
        raise TypeError(f"`{name}` must hold integer class labels, got dtype {arr.dtype}")
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"`{name}` must have shape (n,), got shape {arr.shape}")
    arr = arr.astype(np.int64)
    if n_classes is not None and arr.size and (arr.min() < 0 or arr.max() >= n_classes):
        raise ValueError(
            f"`{name}` labels must lie in [0, {n_classes}) to match the {n_classes} output "
            f"columns, got range [{arr.min()}, {arr.max()}]"
        )
    return arr


def as_weights(w: Any, n: int, name: str = "weights") -> np.ndarray | None:
    """Validate optional per-sample weights and return them normalised to sum to one."""
    if w is None:
        return None
    arr = to_numpy(w, name)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"`{name}` must be numeric, got dtype {arr.dtype}")
    arr = np.asarray(arr, dtype=np.float64).reshape(-1) if arr.ndim <= 1 else arr
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"`{name}` must have shape ({n},), got shape {np.shape(arr)}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"`{name}` contains NaN or infinite values")
    if np.any(arr < 0):
        raise ValueError(f"`{name}` must be non-negative, got minimum {arr.min()}")
    total = arr.sum()
    if total <= 0:
        raise ValueError(f"`{name}` must have a positive sum, got {total}")
    return arr / total


def check_same_length(**arrays: np.ndarray) -> int:
    """Check that all arrays have the same number of rows; return it."""
    lengths = {k: v.shape[0] for k, v in arrays.items()}
    if len(set(lengths.values())) > 1:
        desc = ", ".join(f"`{k}` has {v}" for k, v in lengths.items())
        raise ValueError(f"inputs must have the same number of samples (rows): {desc}")
    return next(iter(lengths.values()))


def check_task(task: Any) -> str:
    """Validate ``task`` (one of :data:`TASKS`); return it."""
    if task not in TASKS:
        raise ValueError(f"`task` must be one of {TASKS}, got {task!r}")
    return task


def single_logit_is_binary(
    y: Any, task: str = "auto", *, name: str = "y", outputs: str = "outputs", check: bool = True
) -> bool:
    """Whether one output column beside the targets ``y`` is a binary classifier's logit.

    The one rule of the package, applied by :func:`gibloss.gib`, :func:`gibloss.build_q`, the
    loss and the monitor alike:

    * ``task="regression"``: never (float targets are binned, integer targets are symbols);
    * ``task="classification"``: always; ``y`` must take only the values 0 and 1 (integer, bool
      or float, as ``BCEWithLogitsLoss`` wants them);
    * ``task="auto"``: integer or bool labels must be 0/1 (anything else is ambiguous and raises);
      float targets are binary labels when they take only the values 0 and 1, else a regression.

    Parameters
    ----------
    y : numpy.ndarray or torch.Tensor
        The targets (any shape; every value is read).
    task : {"auto", "classification", "regression"}
        See above.
    name, outputs : str
        Argument names for the messages.
    check : bool
        Read the values where the rule does not need them (integer labels under ``"auto"``,
        any labels under ``"classification"``) to check that they are 0/1. Float targets under
        ``"auto"`` are always read: they decide (one host synchronisation for a tensor).

    Raises
    ------
    ValueError
        Labels other than 0/1 where a binary classifier is meant.
    """
    check_task(task)
    if task == "regression":
        return False
    import torch

    is_tensor = isinstance(y, torch.Tensor)
    floating = y.dtype.is_floating_point if is_tensor else np.asarray(y).dtype.kind == "f"
    if not check and not (task == "auto" and floating):
        return True
    if is_tensor:
        yd = y.detach()
        is01 = bool(((yd == 0) | (yd == 1)).all())
    else:
        ya = np.asarray(y)
        is01 = bool(np.all((ya == 0) | (ya == 1)))
    if is01:
        return True
    if task == "auto" and floating:
        return False
    values = (torch.unique(y.detach()).cpu().numpy() if is_tensor else np.unique(y))[:10].tolist()
    if task == "classification":
        raise ValueError(
            f"`{name}` holds values {values} but task='classification' with a single "
            f"`{outputs}` column is a binary classifier (one logit): its labels must be 0/1"
        )
    raise ValueError(
        f"`{name}` holds integer labels {values} but `{outputs}` has a single output column: one "
        "logit is a binary classifier (labels 0/1); pass logits (n, k) for k classes, or float "
        "targets (or task='regression') for a regression"
    )


def looks_like_probabilities(z: Any) -> Any:
    """Whether ``(n, k)`` outputs read as logits look like probabilities: every row in
    ``[0, 1]`` and summing to one (to 1e-4). A 0-d bool tensor for a tensor (no host
    synchronisation), a bool for an array; False for other shapes and dtypes."""
    import torch

    if isinstance(z, torch.Tensor):
        zd = z.detach()
        if zd.ndim != 2 or zd.shape[1] < 2 or not zd.dtype.is_floating_point:
            return torch.zeros((), dtype=torch.bool, device=zd.device)
        return ((zd >= 0) & (zd <= 1)).all() & ((zd.sum(dim=1) - 1).abs() <= 1e-4).all()
    za = np.asarray(z)
    if za.ndim != 2 or za.shape[1] < 2 or za.dtype.kind != "f":
        return False
    return bool(np.all((za >= 0) & (za <= 1)) and np.all(np.abs(za.sum(axis=1) - 1) <= 1e-4))


def warn_probabilities(name: str = "outputs", stacklevel: int = 3) -> None:
    """The warning for :func:`looks_like_probabilities`: a softmax applied twice squeezes every
    class towards ``1/k``, and Q reads almost nothing."""
    import warnings

    warnings.warn(
        f"`{name}` look like probabilities (every row in [0, 1], summing to 1), but they are "
        "read as logits and softmaxed again; pass the logits (or their log: log-probabilities "
        "are logits)",
        UserWarning,
        stacklevel=stacklevel + 1,
    )

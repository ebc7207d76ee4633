"""Boundary checks shared by every public function.

Every public entry point converts its inputs here, so that a bad argument is reported once, with
the argument's name and what was expected, before any estimator sees it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "as_array",
    "as_labels",
    "as_weights",
    "check_same_length",
    "is_discrete",
]


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

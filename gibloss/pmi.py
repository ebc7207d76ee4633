"""The PMI-reweighted prediction variable Q of the exact estimators, as numpy codes and weights.

:func:`build_q` is :func:`gibloss.q.code_q` with hard codes of Z (``z_code``), no gradient, and
Q's value per sample (``q``): the cell ``(z, y)`` itself, the value of ``log r``, or the coded
output. :func:`pmi_weights` is its weights alone. See ``docs/theory.md`` for the alternatives
and a worked example where they differ.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ._validation import as_array, looks_like_probabilities, warn_probabilities
from .estimators._discrete import MIN_MASS, dense
from .q import PMI_MODES, Q_KINDS, Z_CODES, code_q, pmi_mass

__all__ = [
    "MIN_MASS",
    "PMI_MODES",
    "Q_KINDS",
    "QVariable",
    "Z_CODES",
    "build_q",
    "output_confidence",
    "pmi_mass",
    "pmi_weights",
]


@dataclass
class QVariable:
    """The prediction variable Q as per-sample codes and weights.

    Attributes
    ----------
    codes : numpy.ndarray
        ``(n,)`` dense integer value of Q for each sample.
    weights : numpy.ndarray
        ``(n,)`` non-negative sample weights summing to one (the measure under which ``I(.; Q)``
        is computed).
    z_codes, y_codes : numpy.ndarray
        ``(n,)`` dense codes of Z and Y.
    log_ratio : numpy.ndarray
        ``(n,)`` ``log2 r_j`` of each sample's cell.
    diagnostics : dict
        ``n_z_codes``, ``n_q_cells``, the effective sample size of the weights and, for outputs
        read as logits, :func:`output_confidence`.
    """

    codes: np.ndarray
    weights: np.ndarray
    z_codes: np.ndarray
    y_codes: np.ndarray
    log_ratio: np.ndarray
    diagnostics: dict[str, Any] = field(default_factory=dict)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def output_confidence(z: np.ndarray, bins: int) -> dict[str, float]:
    """The output side of a plane: mean max-p and the fraction of rows in extreme bins.

    For logits ``(n, k)`` with ``k >= 2``: ``mean_max_p`` is the mean of the largest softmax
    probability; ``extreme_fraction`` the fraction of rows whose every class probability lies in
    the first or the last of ``bins`` equal bins over ``[0, 1]`` (a saturated softmax, whose
    binned code carries nothing but the decision). Empty for other outputs.
    """
    if z.dtype.kind not in "f" or z.ndim != 2 or z.shape[1] < 2:
        return {}
    p = _softmax(z)
    edge = 1.0 / bins
    extreme = np.all((p < edge) | (p >= 1.0 - edge), axis=1)
    return {"mean_max_p": float(p.max(axis=1).mean()), "extreme_fraction": float(extreme.mean())}


def build_q(
    z: Any,
    y: Any,
    *,
    pmi: str | None = None,
    z_code: str = "probs",
    q: str = "cell",
    bins: int = 30,
    task: str = "auto",
) -> QVariable:
    """Build the PMI-reweighted prediction variable Q from outputs ``z`` and targets ``y``.

    Parameters
    ----------
    z : array-like or torch.Tensor
        ``(n, k)`` logits (classification), ``(n,)`` float outputs (regression), or ``(n,)``
        integer predicted classes.
    y : array-like or torch.Tensor
        ``(n,)`` integer labels (classification) or float targets (regression, binned).
    pmi : {"ratio", "ppmi", "literal", "none"}, optional
        Sample weighting. Default: ``"ratio"`` for ``q="cell"`` and ``q="z"``, ``"none"`` for
        ``q="pmi"``.
    z_code : {"probs", "logits", "argmax", "binned"}
        How Z is discretised: ``"probs"``, softmax probabilities in ``bins`` equal bins over
        ``[0, 1]``, the whole row as one state; ``"logits"``, each column in ``bins`` equal bins
        over its range, the whole row; ``"argmax"``, the predicted class; ``"binned"``, any
        representation (a hidden layer) binned as ``"logits"`` without reading its columns as
        classes. One float column (a regression) is binned over its range; integer ``z`` is
        taken as already-coded predictions.
    q : {"cell", "pmi", "z"}
        Q's value: the cell ``(z_code, y_code)``, the value of the pointwise log-ratio, or the
        coded output Z itself (the PMI weights then carry all of Y's influence).
    bins : int
        Bins for ``z_code`` and for regression targets.
    task : {"auto", "classification", "regression"}
        How one float output column is read: ``"auto"`` is a binary classifier's logit when
        ``y`` holds only 0 and 1 (integer or float labels), else a regression.

    Returns
    -------
    QVariable
    """
    if q not in Q_KINDS:
        raise ValueError(f"`q` must be one of {Q_KINDS}, got {q!r}")
    if pmi is None:
        pmi = "none" if q == "pmi" else "ratio"
    if z_code not in Z_CODES:
        raise ValueError(f"`z_code` must be one of {Z_CODES}, got {z_code!r}")
    za = torch.as_tensor(as_array(z, "z"))
    ya = y if isinstance(y, torch.Tensor) else torch.as_tensor(as_array(y, "y"))
    with torch.no_grad():
        c = code_q(za, ya, z_code=z_code, pmi=pmi, bins=bins, task=task, name="z")
    read = c.outputs.numpy()
    if z_code not in ("argmax", "binned") and looks_like_probabilities(read):
        warn_probabilities("z", stacklevel=3)
    zc, yc, w = c.cols.numpy(), c.hard.cpu().numpy(), c.mass.numpy()
    log_ratio = np.log2(c.ratio.numpy())
    if q == "cell":
        codes, _ = dense(zc * c.n_hard + yc)
    elif q == "z":
        codes = zc
    else:
        codes, _ = dense(np.round(log_ratio, 10))
    diagnostics = {
        "n_z_codes": c.n_cols,
        "n_q_cells": int(np.unique(codes[w > 0]).size),
        "weights_ess": float(1.0 / np.square(w).sum()),
        **(output_confidence(read, bins) if z_code != "binned" else {}),
    }
    return QVariable(codes, w, zc, yc, log_ratio, diagnostics)


def pmi_weights(
    z: Any,
    y: Any,
    mode: str = "ratio",
    *,
    z_code: str = "probs",
    bins: int = 30,
) -> np.ndarray:
    """Per-sample PMI weights of the prediction variable Q.

    With ``r_j = p(z_j, y_j) / (p(z_j) p(y_j))`` from the empirical contingency table of the coded
    outputs and targets: ``"ratio"`` gives ``w ∝ r``; ``"ppmi"`` gives ``w ∝ max(log r, 0)``
    (uniform, with a warning, when every cell has non-positive PMI); ``"literal"`` draws a cell with
    probability ``∝ r(cell)`` and then a row uniformly inside it, ``w ∝ r / count(cell)``;
    ``"none"`` is uniform.

    Parameters
    ----------
    z, y : array-like or torch.Tensor
        Outputs and targets, as in :func:`build_q`.
    mode : {"ratio", "ppmi", "literal", "none"}
        The weighting.
    z_code : {"probs", "logits", "argmax", "binned"}
        How Z is discretised.
    bins : int
        Bins for ``z_code`` and regression targets.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` weights summing to one.

    Examples
    --------
    >>> import numpy as np
    >>> from gibloss import pmi_weights
    >>> y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    >>> pred = np.array([0, 0, 0, 1, 1, 1, 1, 0])   # 75 % accuracy
    >>> w = pmi_weights(pred, y, mode="ratio")
    >>> bool(w[0] > w[3])                          # correct rows weigh more
    True
    """
    if mode not in PMI_MODES:
        raise ValueError(f"`mode` must be one of {PMI_MODES}, got {mode!r}")
    return build_q(z, y, pmi=mode, z_code=z_code, bins=bins).weights

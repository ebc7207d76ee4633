"""The PMI-reweighted prediction variable Q (design §3.1).

The paper defines Q by "sampling from the distribution Q(Z, Y) = P(Z, Y) / (P(Z) P(Y))". We make
that operational in three explicit steps, each switchable:

1. code Z (``z_code``) and Y as discrete symbols;
2. weight every sample by a function of its cell's pointwise ratio
   ``r = p(z, y) / (p(z) p(y))`` (``mode``);
3. give Q a value per sample (``q``): the cell ``(z, y)`` itself, or the value of ``log r``.

See ``docs/theory.md`` for the alternatives and a worked example where they differ.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._validation import as_array, as_labels, check_same_length
from .estimators._discrete import dense, row_codes
from .estimators.binning import BinningEstimator

__all__ = [
    "PMI_MODES",
    "Q_KINDS",
    "QVariable",
    "Z_CODES",
    "build_q",
    "code_outputs",
    "code_targets",
    "pmi_weights",
]

PMI_MODES = ("ratio", "ppmi", "literal", "none")
Z_CODES = ("probs", "logits", "argmax")
Q_KINDS = ("cell", "pmi")


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
        ``n_z_codes``, ``n_q_cells`` and the effective sample size of the weights.
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


def _is_classification(z: np.ndarray) -> bool:
    """Logits ``(n, k)`` with ``k >= 2``, or integer predicted classes."""
    return z.dtype.kind in "iu" or z.shape[1] >= 2


def code_outputs(z: np.ndarray, z_code: str, bins: int) -> tuple[np.ndarray, int]:
    """Discretise model outputs Z into dense codes.

    Parameters
    ----------
    z : numpy.ndarray
        Validated ``(n, k)`` logits, ``(n, 1)`` regression outputs, or integer class predictions.
    z_code : {"probs", "logits", "argmax"}
        ``"probs"``: softmax probabilities binned over ``[0, 1]`` (``bins`` bins), the whole row as
        one state. ``"logits"``: the logits binned per column over their min-max, whole row.
        ``"argmax"``: the predicted class. Regression outputs (one float column) are always binned
        over their min-max; integer ``z`` is taken as already-coded predictions.
    bins : int
        Number of bins.
    """
    if z_code not in Z_CODES:
        raise ValueError(f"`z_code` must be one of {Z_CODES} or 'auto', got {z_code!r}")
    if z.dtype.kind in "iu":
        return row_codes(z)
    if z.shape[1] == 1:
        return row_codes(BinningEstimator(bins=bins).discretize(z))
    if z_code == "argmax":
        return dense(np.argmax(z, axis=1))
    if z_code == "probs":
        est = BinningEstimator(bins=bins, strategy="fixed", range=(0.0, 1.0))
        return row_codes(est.discretize(_softmax(z)))
    return row_codes(BinningEstimator(bins=bins).discretize(z))


def code_targets(y: Any, z: np.ndarray, bins: int, name: str = "y") -> tuple[np.ndarray, int]:
    """Dense codes of the targets: class labels as they are, float regression targets binned."""
    if _is_classification(z):
        n_classes = None if z.dtype.kind in "iu" else z.shape[1]
        labels = as_labels(y, name, n_classes=n_classes)
        return dense(labels)
    ya = as_array(y, name)
    if ya.dtype.kind in "iu":
        return row_codes(ya)
    return row_codes(BinningEstimator(bins=bins).discretize(ya))


def _ratio(zc: np.ndarray, kz: int, yc: np.ndarray, ky: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-sample ratio ``r_j``, the cell code of each sample and the number of cells."""
    n = zc.shape[0]
    cell_raw = zc * ky + yc
    joint = np.bincount(cell_raw, minlength=kz * ky) / n
    pz = np.bincount(zc, minlength=kz) / n
    py = np.bincount(yc, minlength=ky) / n
    r = joint[cell_raw] / (pz[zc] * py[yc])
    cells, k_cells = dense(cell_raw)
    return r, cells, k_cells


def _weights_for(mode: str, r: np.ndarray, cells: np.ndarray) -> np.ndarray:
    if mode == "ratio":
        w = r.copy()
    elif mode == "ppmi":
        w = np.maximum(np.log2(r), 0.0)
        if not np.any(w > 0):
            warnings.warn(
                "pmi='ppmi': no cell has positive PMI (Z and Y look independent); "
                "falling back to uniform weights",
                RuntimeWarning,
                stacklevel=3,
            )
            w = np.ones_like(r)
    elif mode == "literal":
        counts = np.bincount(cells)
        w = r / counts[cells]
    elif mode == "none":
        w = np.ones_like(r)
    else:
        raise ValueError(f"`pmi` must be one of {PMI_MODES}, got {mode!r}")
    return w / w.sum()


def build_q(
    z: Any,
    y: Any,
    *,
    pmi: str | None = None,
    z_code: str = "probs",
    q: str = "cell",
    bins: int = 30,
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
        Sample weighting. Default: ``"ratio"`` for ``q="cell"``, ``"none"`` for ``q="pmi"``.
    z_code : {"probs", "logits", "argmax"}
        How Z is discretised (see :func:`code_outputs`).
    q : {"cell", "pmi"}
        Q's value: the cell ``(z_code, y_code)``, or the value of the pointwise log-ratio.
    bins : int
        Bins for ``z_code`` and for regression targets.

    Returns
    -------
    QVariable
    """
    if q not in Q_KINDS:
        raise ValueError(f"`q` must be one of {Q_KINDS}, got {q!r}")
    if pmi is None:
        pmi = "ratio" if q == "cell" else "none"
    if pmi not in PMI_MODES:
        raise ValueError(f"`pmi` must be one of {PMI_MODES}, got {pmi!r}")
    za = as_array(z, "z")
    zc, kz = code_outputs(za, z_code, bins)
    yc, ky = code_targets(y, za, bins)
    check_same_length(z=zc, y=yc)
    r, cells, _ = _ratio(zc, kz, yc, ky)
    w = _weights_for(pmi, r, cells)
    log_ratio = np.log2(r)
    if q == "cell":
        codes = cells
    else:
        codes, _ = dense(np.round(log_ratio, 10))
    diagnostics = {
        "n_z_codes": kz,
        "n_q_cells": int(np.unique(codes[w > 0]).size),
        "weights_ess": float(1.0 / np.square(w).sum()),
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
    z_code : {"probs", "logits", "argmax"}
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

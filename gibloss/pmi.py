"""The PMI-reweighted prediction variable Q.

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
import torch

from ._validation import (
    as_array,
    as_labels,
    check_same_length,
    check_task,
    looks_like_probabilities,
    single_logit_is_binary,
    warn_probabilities,
)
from .estimators._discrete import MIN_MASS, dense, row_codes
from .estimators.binning import BinningEstimator

__all__ = [
    "MIN_MASS",
    "PMI_MODES",
    "Q_KINDS",
    "QVariable",
    "Z_CODES",
    "build_q",
    "code_outputs",
    "binary_logits",
    "code_targets",
    "output_confidence",
    "pmi_mass",
    "pmi_weights",
]

PMI_MODES = ("ratio", "ppmi", "literal", "none")
Z_CODES = ("probs", "logits", "argmax", "binned")
Q_KINDS = ("cell", "pmi", "z")


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
    z_code : {"probs", "logits", "argmax", "binned"}
        ``"probs"``: softmax probabilities binned over ``[0, 1]`` (``bins`` bins), the whole row as
        one state. ``"logits"``: the logits binned per column over their min-max, whole row.
        ``"argmax"``: the predicted class. ``"binned"``: any representation (a hidden layer, or
        outputs that are not logits) binned per column over its min-max, whole row: the same
        partition as ``"logits"``, without reading the columns as classes. Regression outputs (one
        float column) are always binned over their min-max; integer ``z`` is taken as
        already-coded predictions.
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
    return row_codes(BinningEstimator(bins=bins).discretize(z))  # "logits" and "binned"


def binary_logits(z: np.ndarray, y: Any, task: str = "auto") -> tuple[np.ndarray, Any]:
    """A single-logit binary classifier's outputs as two-class logits; anything else unchanged.

    One float output column beside 0/1 labels (integer, bool or float, by the rule of
    :func:`gibloss._validation.single_logit_is_binary` and ``task``) is a ``BCEWithLogitsLoss``
    model: ``[0, z]`` has softmax ``[1 - sigmoid(z), sigmoid(z)]``, and the labels come back as
    integers. One float column with other float targets is a regression; with other integer
    labels it is ambiguous and raises (unless ``task="regression"``).

    Returns
    -------
    z, y
        The (possibly two-column) outputs and the (possibly integer) targets.
    """
    check_task(task)
    if z.dtype.kind != "f" or z.shape[1] != 1:
        if task == "regression" and z.dtype.kind == "f":
            raise ValueError(
                f"task='regression' needs one output column, got `z` of shape {z.shape} "
                "(logits of a classifier)"
            )
        return z, y
    ya = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    if not single_logit_is_binary(ya, task, name="y", outputs="z"):
        return z, y
    return np.column_stack([np.zeros(len(z)), z[:, 0]]), ya.reshape(-1).astype(np.int64)


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


def code_targets(
    y: Any, z: np.ndarray, bins: int, name: str = "y", *, representation: bool = False
) -> tuple[np.ndarray, int]:
    """Dense codes of the targets: class labels as they are, float regression targets binned.

    With ``representation=True`` (``z_code="binned"``) ``z``'s columns are not classes: integer
    targets are labels, float targets are binned.
    """
    if representation:
        ya = as_array(y, name)
        if ya.dtype.kind in "biu":
            return row_codes(ya.astype(np.int64))
        return row_codes(BinningEstimator(bins=bins).discretize(ya))
    if _is_classification(z):
        n_classes = None if z.dtype.kind in "iu" else z.shape[1]
        labels = as_labels(y, name, n_classes=n_classes)
        return dense(labels)
    ya = as_array(y, name)
    if ya.dtype.kind in "iu":
        return row_codes(ya)
    return row_codes(BinningEstimator(bins=bins).discretize(ya))


def pmi_mass(
    values: torch.Tensor,
    rows: torch.Tensor | None,
    cols: torch.Tensor,
    hard: torch.Tensor,
    n_hard: int,
    n_cols: int,
    pmi: str,
    check: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """PMI-weighted measure over (sample, Z code) pairs: the one implementation of Q's weights.

    The memberships of sample ``j`` in Z code ``c`` are given as entries ``(rows[e], cols[e],
    values[e])``: every pair for soft memberships (:func:`gibloss.functional.soft_q`), one entry
    per sample with value 1 for hard codes (:func:`build_q`, the exact estimators). With the
    target's hard code ``h_j``, the contingency table ``P(h, c) = (1/n) sum_e [h_rows[e] = h]
    [cols[e] = c] values[e]`` gives the ratio ``r(h, c) = P(h, c) / (P(h) P(c))`` and each entry
    the mass ``values[e] * f(r)``, normalised to sum to one:

    * ``"ratio"``: ``f = r``;
    * ``"ppmi"``: ``f = max(log2 r, 0)``;
    * ``"literal"``: ``f = r / (n P(h, c))`` (a cell drawn with probability ``∝ r``, then a row
      uniformly inside it);
    * ``"none"``: ``f = 1``.

    When every entry gets zero weight (``"ppmi"`` with Z and Y independent) the masses fall back
    to the memberships, with a ``RuntimeWarning``. Cells lighter than :data:`MIN_MASS` are empty.

    Parameters
    ----------
    values : torch.Tensor
        ``(E,)`` non-negative memberships (may carry gradient). Each sample's memberships sum to
        one, or to its multiplicity: integer counts give the measure of a resample with
        replacement (the bootstrap of :func:`gibloss.gib`).
    rows : torch.Tensor or None
        ``(E,)`` long sample index of each entry; ``None`` means ``E = n`` and entry ``j`` is
        sample ``j``.
    cols : torch.Tensor
        ``(E,)`` long Z code of each entry, in ``[0, n_cols)``.
    hard : torch.Tensor
        ``(n,)`` long target code of each sample, in ``[0, n_hard)``.
    n_hard, n_cols : int
        Number of target codes and of Z codes.
    pmi : {"ratio", "ppmi", "literal", "none"}
        The weighting.
    check : bool
        Warn when the fallback applies (one host synchronisation); the fallback itself needs
        none.

    Returns
    -------
    mass : torch.Tensor
        ``(E,)`` summing to one.
    contingency : torch.Tensor
        ``(n_hard, n_cols)`` unweighted ``P(h, c)``.
    ratio : torch.Tensor
        ``(E,)`` the ratio ``r`` of each entry's cell (0 for empty cells).
    """
    if pmi not in PMI_MODES:
        raise ValueError(f"`pmi` must be one of {PMI_MODES}, got {pmi!r}")
    n = hard.shape[0]
    h = hard if rows is None else hard[rows]
    flat = h * n_cols + cols
    p_hc = values.new_zeros(n_hard * n_cols).index_add(0, flat, values).view(n_hard, n_cols) / n
    # P(h): each sample's memberships sum to its multiplicity (1, or a bootstrap count)
    p_h = p_hc.detach().sum(dim=1)
    p_c = p_hc.sum(dim=0)
    denom = p_h[:, None] * p_c[None, :]
    # Cells of negligible mass are empty: dividing by a tiny (not zero) mass overflows the
    # backward pass and gives NaN gradients (see MIN_MASS).
    pos = (p_hc > MIN_MASS) & (denom > MIN_MASS)
    one = torch.ones_like(denom)
    ratio_table = torch.where(pos, p_hc / torch.where(pos, denom, one), 0.0 * p_hc)
    r = ratio_table.view(-1)[flat]
    if pmi == "ratio":
        f = r
    elif pmi == "ppmi":
        rp = r > 0
        log_r = torch.where(rp, torch.log2(torch.where(rp, r, torch.ones_like(r))), 0.0 * r)
        f = torch.clamp_min(log_r, 0.0)
    elif pmi == "literal":
        cnt = torch.where(pos, n * p_hc, one).view(-1)[flat]
        f = torch.where(pos.view(-1)[flat], r / cnt, 0.0 * r)
    else:
        f = torch.ones_like(r)
    mu = values * f
    total = mu.sum()
    empty = total.detach() <= 0
    if check and bool(empty):
        warnings.warn(
            f"pmi={pmi!r}: no cell has positive weight (Z and Y look independent); "
            "falling back to uniform weights",
            RuntimeWarning,
            stacklevel=3,
        )
    mu = torch.where(empty, values, mu)
    total = torch.where(empty, values.sum(), total)
    return mu / total, p_hc, r


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
        How Z is discretised (see :func:`code_outputs`).
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
    if pmi not in PMI_MODES:
        raise ValueError(f"`pmi` must be one of {PMI_MODES}, got {pmi!r}")
    if z_code not in Z_CODES:
        raise ValueError(f"`z_code` must be one of {Z_CODES}, got {z_code!r}")
    check_task(task)
    za = as_array(z, "z")
    if z_code != "binned":
        za, y = binary_logits(za, y, task)
        if z_code != "argmax" and looks_like_probabilities(za):
            warn_probabilities("z", stacklevel=3)
    zc, kz = code_outputs(za, z_code, bins)
    yc, ky = code_targets(y, za, bins, representation=z_code == "binned")
    check_same_length(z=zc, y=yc)
    with torch.no_grad():
        mass, _, ratio = pmi_mass(
            torch.ones(zc.shape[0], dtype=torch.float64),
            None,
            torch.as_tensor(zc),
            torch.as_tensor(yc),
            ky,
            kz,
            pmi,
        )
    w = mass.numpy()
    log_ratio = np.log2(ratio.numpy())
    cells, _ = dense(zc * ky + yc)
    if q == "cell":
        codes = cells
    elif q == "z":
        codes = zc
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

"""The prediction variable Q, in torch: one builder for the exact estimators and the loss.

The paper defines Q by "sampling from the distribution Q(Z, Y) = P(Z, Y) / (P(Z) P(Y))". The
builder (:func:`code_q`) makes it operational in three steps:

1. read the outputs (one logit beside 0/1 labels is a binary classifier: two logits ``[0, z]``,
   the rule of :func:`gibloss._validation.single_logit_is_binary`) and code Y (class labels as
   they are; integer symbols densely; float targets in equal-width bins over their range);
2. give every sample its memberships in the codes of Z: **hard** (``z_code`` ``"probs"``,
   ``"logits"``, ``"argmax"``, ``"binned"``: one code per sample, the exact estimators) or
   **soft** (``z_code="soft"``: ``softmax(z / temperature)`` for classification, Gaussian-Parzen
   soft bins of a regression output; the loss, with gradient);
3. weight each (sample, code) entry by a function of its cell's pointwise ratio
   ``r = p(z, y) / (p(z) p(y))`` (:func:`pmi_mass`, ``pmi``).

Hard memberships are the exact case of soft ones: the weighting, the target coding and the
binary-logit rule are the same lines. :func:`soft_q` is the soft view (an ``(n, K)`` measure the
surrogates train on); :func:`gibloss.build_q` the exact, numpy-facing view of hard codes.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch

from ._validation import check_task, single_logit_is_binary
from .estimators._discrete import MIN_MASS, row_codes
from .estimators._partitions import equal_width_codes

__all__ = [
    "PMI_MODES",
    "Q_KINDS",
    "Z_CODES",
    "CodedQ",
    "SoftQ",
    "check_targets",
    "code_q",
    "pmi_mass",
    "soft_q",
]

PMI_MODES = ("ratio", "ppmi", "literal", "none")
#: Hard codings of Z (the exact estimators); ``"soft"`` is the loss's.
Z_CODES = ("probs", "logits", "argmax", "binned")
Q_KINDS = ("cell", "pmi", "z")


@dataclass
class SoftQ:
    """The prediction variable Q as a joint measure over (sample, output code).

    A Q cell is ``(h, c)``: ``h`` the hard code of the target, ``c`` a code of the output (soft
    memberships in general; a one-hot row is the exact, hard case).

    Attributes
    ----------
    hard : torch.Tensor
        ``(n,)`` long: target code of each sample.
    n_hard : int
        Number of target codes.
    mass : torch.Tensor
        ``(n, K)``: joint measure over (sample, output code) of Q, summing to one; sample ``j``
        sits in cells ``(hard[j], c)``.
    contingency : torch.Tensor
        ``(n_hard, K)`` unweighted contingency table ``P(h, c)`` (for the prediction term).
    """

    hard: torch.Tensor
    n_hard: int
    mass: torch.Tensor
    contingency: torch.Tensor

    def cell_mass(self) -> torch.Tensor:
        """``(n_hard, K)``: ``P(q)`` of every cell under the weighted measure."""
        table = self.mass.new_zeros((self.n_hard, self.mass.shape[1]))
        return table.index_add(0, self.hard, self.mass)


class CodedQ(NamedTuple):
    """What :func:`code_q` builds: Q's weighted entries, the codes and the outputs as read.

    Entry ``e`` is in output code ``cols[e]`` (soft: every (sample, code) pair, sample-major;
    hard: one entry per sample, ``e = j``) with weighted mass ``mass[e]`` (summing to one);
    ``ratio[e]`` is its cell's ``r``; ``hard`` holds each sample's target code.
    """

    cols: torch.Tensor
    n_cols: int
    hard: torch.Tensor
    n_hard: int
    mass: torch.Tensor
    contingency: torch.Tensor
    ratio: torch.Tensor
    outputs: torch.Tensor


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
    values[e])``: every pair for soft memberships (:func:`soft_q`), one entry
    per sample with value 1 for hard codes (:func:`gibloss.build_q`, the exact estimators). With the
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


def check_targets(y: Any, n: int, validate: bool = True, outputs: str = "outputs") -> torch.Tensor:
    """Validate ``y`` against ``n`` output rows; return it as a 1-D tensor (no copy when possible).

    Accepts ``(n,)`` or ``(n, 1)`` tensors of integer, bool or floating dtype (half precision
    included); floating targets must be finite (checked when ``validate``: one synchronisation).
    ``outputs`` names the outputs' argument in the messages.
    """
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"`y` must be a torch.Tensor, got {type(y).__name__}")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"`y` must have shape (n,) or (n, 1), got shape {tuple(y.shape)}")
    if y.dtype.is_complex:
        raise TypeError(f"`y` must hold integer labels or real targets, got dtype {y.dtype}")
    if y.shape[0] != n:
        raise ValueError(
            f"inputs must have the same number of samples (rows): `{outputs}` has {n}, "
            f"`y` has {y.shape[0]}"
        )
    if validate and y.dtype.is_floating_point and not bool(torch.isfinite(y).all()):
        bad = int((~torch.isfinite(y)).sum())
        raise ValueError(f"`y` contains {bad} NaN or infinite value(s)")
    return y


def _read_outputs(
    outputs: torch.Tensor, y: torch.Tensor, task: str, validate: bool, name: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """The outputs as a classifier's ``(n, k)`` logits or a regression's ``(n,)`` values.

    One column beside 0/1 labels (:func:`gibloss._validation.single_logit_is_binary` with
    ``task``) is a binary classifier: ``[0, z]`` has softmax ``[1 - sigmoid(z), sigmoid(z)]``, and
    the labels become integers.
    """
    if outputs.ndim == 2 and outputs.shape[1] == 1:
        outputs = outputs[:, 0]
    if outputs.ndim == 2 and task == "regression" and outputs.dtype.is_floating_point:
        raise ValueError(
            f"task='regression' needs one output column, got `{name}` of shape "
            f"{tuple(outputs.shape)} (logits of a classifier)"
        )
    if outputs.ndim == 1 and outputs.dtype.is_floating_point:
        if single_logit_is_binary(y, task, outputs=name, check=validate):
            return torch.stack([torch.zeros_like(outputs), outputs], dim=1), y.long()
    return outputs, y


def _soft_memberships(
    outputs: torch.Tensor, temperature: float, bins: int
) -> tuple[torch.Tensor, bool]:
    """Soft codes of Z ``(n, K)`` and whether the task is classification."""
    if outputs.ndim == 2 and outputs.shape[1] >= 2:
        # softmax is shift-invariant: subtracting the (detached) row maximum first keeps
        # outputs / temperature from overflowing for huge logits or tiny temperatures.
        shifted = outputs - outputs.detach().amax(dim=1, keepdim=True)
        return torch.softmax(shifted / temperature, dim=1), True
    z = outputs.reshape(-1)
    # The memberships are invariant to a common scale of z (the bins follow the range), so
    # divide by the (detached) largest magnitude: no square below can overflow.
    big = z.detach().abs().max()
    z = z / torch.where(big > 0, big, torch.ones_like(big))
    # The bins span the batch's own range (as the exact estimator's do); the range is part of the
    # function, so gradients flow through it too.
    lo, hi = z.min(), z.max()
    width = (hi - lo) / bins
    flat = width.detach() <= 0  # a constant output: every row in the first bin
    safe = torch.where(flat, torch.ones_like(width), width)
    centers = lo + (torch.arange(bins, dtype=z.dtype, device=z.device) + 0.5) * safe
    logits = -0.5 * ((z[:, None] - centers[None, :]) / (temperature * safe)) ** 2
    first = torch.zeros((z.shape[0], bins), dtype=z.dtype, device=z.device)
    first[:, 0] = 1.0
    return torch.where(flat, first + 0.0 * z[:, None], torch.softmax(logits, dim=1)), False


def _row_codes(codes: torch.Tensor) -> tuple[torch.Tensor, int]:
    """One dense code per distinct row of hard codes ``(n,)`` or ``(n, d)``, by the exact
    estimators' own row coding (:func:`gibloss.estimators._discrete.row_codes`, on the host: hard
    codes carry no gradient)."""
    host = codes.detach().reshape(codes.shape[0], -1).cpu().numpy()
    dense_codes, k = row_codes(host)
    return torch.from_numpy(dense_codes).to(codes.device), k


def _symbols(y: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Integer symbols relabelled densely, on their device (``torch.unique``: one
    synchronisation)."""
    uniq, inv = torch.unique(y.long(), return_inverse=True)
    return inv.reshape(-1), int(uniq.numel())


def _hard_codes(outputs: torch.Tensor, z_code: str, bins: int) -> tuple[torch.Tensor, int, bool]:
    """Hard codes of Z ``(n,)``, their number, and whether the task is classification.

    ``"probs"``: softmax probabilities in ``bins`` equal bins over ``[0, 1]``, the whole row as
    one state; ``"logits"`` and ``"binned"``: each column in ``bins`` equal bins over its range,
    the whole row; ``"argmax"``: the predicted class. Integer outputs are already-coded
    predictions; one float column (a regression) is binned over its range.
    """
    if not outputs.dtype.is_floating_point:
        return (*_row_codes(outputs), True)
    z = outputs.detach().to(torch.float64)
    if z.ndim == 1:
        return (*_row_codes(equal_width_codes(z[:, None], bins)), False)
    if z_code == "argmax":
        return (*_row_codes(z.argmax(dim=1)), True)
    if z_code == "probs":
        return (*_row_codes(equal_width_codes(torch.softmax(z, dim=1), bins, 0.0, 1.0)), True)
    return (*_row_codes(equal_width_codes(z, bins)), True)  # "logits" (and "binned")


def _target_codes(
    y: torch.Tensor, classification: bool, n_classes: int | None, bins: int, validate: bool = True
) -> tuple[torch.Tensor, int]:
    """Hard codes of the (validated, 1-D) target.

    Classification: integer (or bool) labels, as they are when the outputs are logits over
    ``n_classes`` classes (their range checked when ``validate``: one synchronisation), densely
    beside integer predictions. Otherwise integer or bool symbols densely (``torch.unique``: one
    synchronisation) and float targets in ``bins`` equal bins over their range (as
    ``BinningEstimator(bins=bins)`` bins a column).
    """
    yd = y.detach()
    if classification:
        if yd.dtype.is_floating_point:
            raise TypeError(
                f"`y` must hold integer class labels for logits (n, k), got dtype {y.dtype}; "
                "cast with .astype(int) / .long() if the values are whole numbers"
            )
        yl = yd.long()
        if n_classes is None:
            return _symbols(yl)
        if validate and yl.numel():
            lo, hi = torch.stack([yl.min(), yl.max()]).tolist()
            if lo < 0 or hi >= n_classes:
                raise ValueError(
                    f"`y` labels must lie in [0, {n_classes}) to match the {n_classes} output "
                    f"columns, got range [{lo}, {hi}]"
                )
        return yl, n_classes
    if not yd.dtype.is_floating_point:  # integer or bool symbols
        return _symbols(yd)
    return equal_width_codes(yd[:, None], bins)[:, 0], int(bins)


def code_q(
    outputs: torch.Tensor,
    y: torch.Tensor,
    *,
    z_code: str = "soft",
    pmi: str = "ratio",
    bins: int = 30,
    temperature: float = 1.0,
    task: str = "auto",
    validate: bool = True,
    name: str = "outputs",
) -> CodedQ:
    """Build Q's weighted entries from outputs and targets: the one Q builder.

    Parameters
    ----------
    outputs : torch.Tensor
        ``(n, k)`` logits, ``(n,)`` / ``(n, 1)`` one logit of a binary classifier or a regression
        output (see ``task``), integer predicted classes, or (``z_code="binned"``) any
        representation.
    y : torch.Tensor
        ``(n,)`` targets (validated by :func:`check_targets`).
    z_code : {"soft", "probs", "logits", "argmax", "binned"}
        Soft memberships (the loss) or one of the hard codings of the exact estimators.
    pmi : {"ratio", "ppmi", "literal", "none"}
        The weighting (:func:`pmi_mass`).
    bins : int
        Bins of Z (hard codes; soft bins of a regression output) and of float targets.
    temperature : float
        Softness of soft memberships.
    task : {"auto", "classification", "regression"}
        How one output column is read (:func:`gibloss._validation.single_logit_is_binary`).
    validate : bool
        Check labels and finiteness (each check one host synchronisation).
    name : str
        The outputs' argument name in messages.

    Returns
    -------
    CodedQ
    """
    if pmi not in PMI_MODES:
        raise ValueError(f"`pmi` must be one of {PMI_MODES}, got {pmi!r}")
    if z_code != "soft" and z_code not in Z_CODES:
        raise ValueError(f"`z_code` must be one of {Z_CODES} or 'soft', got {z_code!r}")
    check_task(task)
    y = check_targets(y, outputs.shape[0], validate, outputs=name)
    if z_code != "binned":  # a representation's one column is not a logit
        outputs, y = _read_outputs(outputs, y, task, validate, name)
    n = outputs.shape[0]
    if z_code == "soft":
        m, classification = _soft_memberships(outputs, temperature, bins)
        k = m.shape[1]
        values = m.reshape(-1)
        rows = torch.arange(n, device=m.device).repeat_interleave(k)
        cols = torch.arange(k, device=m.device).repeat(n)
    else:
        cols, k, classification = _hard_codes(outputs, z_code, bins)
        values = torch.ones(n, dtype=torch.float64, device=cols.device)
        rows = None
        classification = classification and z_code != "binned"  # a representation's columns
    is_logits = classification and outputs.dtype.is_floating_point and outputs.ndim == 2
    n_classes = outputs.shape[1] if is_logits else None
    hard, n_hard = _target_codes(y, classification, n_classes, bins, validate)
    if hard.device != cols.device:
        hard = hard.to(cols.device)
    mass, p_hc, ratio = pmi_mass(values, rows, cols, hard, n_hard, k, pmi, check=validate)
    return CodedQ(cols, k, hard, n_hard, mass, p_hc, ratio, outputs)


def soft_q(
    outputs: torch.Tensor,
    y: torch.Tensor,
    *,
    pmi: str = "ratio",
    temperature: float = 1.0,
    bins: int = 30,
    q: str = "cell",
    validate: bool = True,
    task: str = "auto",
) -> SoftQ:
    """Differentiable PMI-reweighted Q from model outputs and targets (:func:`code_q` with soft
    memberships, as an ``(n, K)`` measure).

    Parameters
    ----------
    outputs : torch.Tensor
        ``(n, k)`` logits (classification), or ``(n,)`` / ``(n, 1)``: one logit of a binary
        classifier when ``y`` holds labels 0/1 (integer, bool or float), a regression output when
        ``y`` holds other float targets (see ``task``).
    y : torch.Tensor
        ``(n,)`` integer labels in ``[0, k)``, or float targets (regression; binned into ``bins``).
        Integer labels other than 0/1 with a single output column are rejected (ambiguous).
    pmi : {"ratio", "ppmi", "literal", "none"}
        Weighting of the soft cells, as in :func:`gibloss.pmi_weights`.
    temperature : float
        Softness of the memberships; towards 0 they become the hard ``argmax`` (or nearest bin).
    bins : int
        Soft bins of a regression output and hard bins of a float target.
    q : {"cell", "z"}
        Q's value: the cell ``(h, c)`` (target code, soft output code), or the soft output code
        alone, under the PMI weights (then ``hard`` is all zeros and ``n_hard`` is 1).
    validate : bool
        Check the labels (range, 0/1 for one logit) and finiteness; each check is one host
        synchronisation.
    task : {"auto", "classification", "regression"}
        How a single output column is read (ignored for ``(n, k)`` logits, which are always a
        classifier's; ``"regression"`` with them raises). ``"auto"``: a binary classifier's logit
        when ``y`` takes only the values 0 and 1 (integer, bool or float labels, as
        ``BCEWithLogitsLoss`` wants them), else a regression (float ``y``; reading the values is
        one host synchronisation). ``"classification"``/``"regression"`` say it.

    Returns
    -------
    SoftQ
    """
    c = code_q(
        outputs, y, z_code="soft", pmi=pmi, bins=bins, temperature=temperature, task=task,
        validate=validate,
    )
    mass = c.mass.view(-1, c.n_cols)
    if q == "z":
        return SoftQ(hard=torch.zeros_like(c.hard), n_hard=1, mass=mass, contingency=c.contingency)
    return SoftQ(hard=c.hard, n_hard=c.n_hard, mass=mass, contingency=c.contingency)

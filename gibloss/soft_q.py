"""The prediction variable Q with soft memberships, in torch: the Q that the loss trains.

Class probabilities ``softmax(z / temperature)`` (classification) or Gaussian-Parzen soft bins of
the output (regression) replace the hard code of Z. With the target's hard code ``h_j``, the soft
contingency table ``P(h, c) = (1/n) sum_j m_jc [h_j = h]`` gives differentiable PMI ratios
``r(h, c)`` and a joint measure over (sample, Q cell), ``mu_j(c) ∝ m_jc f(r(h_j, c))`` with ``f``
set by ``pmi`` (:func:`gibloss.pmi.pmi_mass`, the one weighting the exact estimator uses too).
With hard memberships ``mu`` is exactly the weighting of the exact estimator with
``z_code="argmax"``; as ``temperature → 0`` the surrogates converge to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ._validation import check_task, single_logit_is_binary
from .pmi import PMI_MODES, pmi_mass

__all__ = ["SoftQ", "check_targets", "soft_q"]


@dataclass
class SoftQ:
    """The prediction variable Q with soft memberships.

    A Q cell is ``(h, c)``: ``h`` the hard code of the target, ``c`` a soft code of the output.

    Attributes
    ----------
    hard : torch.Tensor
        ``(n,)`` long: target code of each sample.
    n_hard : int
        Number of target codes.
    mass : torch.Tensor
        ``(n, K)``: joint measure over (sample, soft code) of Q, summing to one; sample ``j`` sits
        in cells ``(hard[j], c)``.
    contingency : torch.Tensor
        ``(n_hard, K)`` unweighted soft contingency table ``P(h, c)`` (for the prediction term).
    """

    hard: torch.Tensor
    n_hard: int
    mass: torch.Tensor
    contingency: torch.Tensor

    def cell_mass(self) -> torch.Tensor:
        """``(n_hard, K)``: ``P(q)`` of every cell under the weighted measure."""
        table = self.mass.new_zeros((self.n_hard, self.mass.shape[1]))
        return table.index_add(0, self.hard, self.mass)


def _memberships(outputs: torch.Tensor, temperature: float, bins: int) -> tuple[torch.Tensor, bool]:
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


def check_targets(y: Any, n: int, validate: bool = True) -> torch.Tensor:
    """Validate ``y`` against ``n`` output rows; return it as a 1-D tensor (no copy when possible).

    Accepts ``(n,)`` or ``(n, 1)`` tensors of integer, bool or floating dtype (half precision
    included); floating targets must be finite (checked when ``validate``: one synchronisation).
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
            f"inputs must have the same number of samples (rows): `outputs` has {n}, "
            f"`y` has {y.shape[0]}"
        )
    if validate and y.dtype.is_floating_point and not bool(torch.isfinite(y).all()):
        bad = int((~torch.isfinite(y)).sum())
        raise ValueError(f"`y` contains {bad} NaN or infinite value(s)")
    return y


def _target_codes(
    y: torch.Tensor, classification: bool, n_classes: int, bins: int, validate: bool = True
) -> tuple[torch.Tensor, int]:
    """Hard codes of the (validated, 1-D) target: labels, dense symbols or uniform bins.

    The label range is checked when ``validate`` (one synchronisation); integer symbols of a
    regression target are relabelled densely (``torch.unique``: one synchronisation).
    """
    if classification:
        if y.dtype.is_floating_point or y.dtype == torch.bool:
            raise TypeError(
                f"`y` must hold integer class labels for logits (n, k), got dtype {y.dtype}"
            )
        yl = y.long()
        if validate and yl.numel():
            lo, hi = torch.stack([yl.min(), yl.max()]).tolist()
            if lo < 0 or hi >= n_classes:
                raise ValueError(
                    f"`y` labels must lie in [0, {n_classes}) to match the {n_classes} output "
                    f"columns, got range [{lo}, {hi}]"
                )
        return yl, n_classes
    yd = y.detach()
    if not yd.dtype.is_floating_point:  # integer or bool symbols
        uniq, inv = torch.unique(yd.long(), return_inverse=True)
        return inv.reshape(-1), int(uniq.numel())
    # Uniform bins over the target's own range, as BinningEstimator(bins=bins) bins it.
    yf = yd.to(torch.float64)
    yf = yf * torch.where(torch.isfinite(yf.max() - yf.min()), 1.0, 0.5)  # exact; see binning
    lo = yf.min()
    span = yf.max() - lo
    codes = torch.floor((yf - lo) / torch.where(span > 0, span, torch.ones_like(span)) * bins)
    codes = codes.clamp(0, bins - 1).long()
    return torch.where(span > 0, codes, torch.zeros_like(codes)), int(bins)


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
    """Differentiable PMI-reweighted Q from model outputs and targets.

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
    if pmi not in PMI_MODES:
        raise ValueError(f"`pmi` must be one of {PMI_MODES}, got {pmi!r}")
    check_task(task)
    y = check_targets(y, outputs.shape[0], validate)
    if outputs.ndim == 2 and outputs.shape[1] == 1:
        outputs = outputs[:, 0]
    if outputs.ndim == 2 and task == "regression":
        raise ValueError(
            f"task='regression' needs one output column, got `outputs` of shape "
            f"{tuple(outputs.shape)} (logits of a classifier)"
        )
    if outputs.ndim == 1 and single_logit_is_binary(y, task, check=validate):
        # one logit and 0/1 labels: a binary classifier, [0, z] -> [1 - sigmoid, sigmoid]
        outputs = torch.stack([torch.zeros_like(outputs), outputs], dim=1)
        y = y.long()
    m, classification = _memberships(outputs, temperature, bins)
    n, k = m.shape
    hard, n_hard = _target_codes(y, classification, k, bins, validate)
    cols = torch.arange(k, device=m.device).repeat(n)
    rows = torch.arange(n, device=m.device).repeat_interleave(k)
    mass, p_hc, _ = pmi_mass(m.reshape(-1), rows, cols, hard, n_hard, k, pmi, check=validate)
    if q == "z":
        return SoftQ(
            hard=torch.zeros_like(hard), n_hard=1, mass=mass.view(n, k), contingency=p_hc
        )
    return SoftQ(hard=hard, n_hard=n_hard, mass=mass.view(n, k), contingency=p_hc)



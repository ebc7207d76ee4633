"""The regularised-versus-plain study: what its training recipe and its evaluation share.

``recipes/regularised_vs_plain.py`` trains one model per setting and seed;
``evaluation/robustness.py`` rebuilds the same architecture to load them, reads the same data's
test split and groups the settings by kind. Both import these definitions, so they cannot drift.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch

from .._deprecation import warn_renamed
from .data import Dataset, cifar10, mnist
from .models import CIFAR10_MEAN, CIFAR10_STD, Normalized, cifar_resnet, mlp

__all__ = ["GIB_KINDS", "KINDS", "Setting", "build_model", "ib_layer", "load", "parse_setting"]

#: The kinds of setting, ``"<kind>:<value>"`` (``"plain"`` has no value):
#: GIBLoss with either surrogate, named after the exact estimator it relaxes (value = weight),
#: label smoothing (value = smoothing), the confidence penalty of Pereyra et al. 2017
#: (cross-entropy minus value x the softmax entropy), and FGSM adversarial training (value =
#: eps; half clean, half adversarial loss), the positive control: a setting known to raise
#: robustness.
KINDS = ("plain", "gaussian_copula", "binning", "label_smoothing", "confidence", "fgsm_train")
#: Kinds renamed with the surrogates in 0.2 (still read, with a DeprecationWarning).
RENAMED_KINDS = {"soft_binning": "binning"}


class Setting(NamedTuple):
    """A parsed setting: its kind, value and, for a GIB kind, Q's reading."""

    kind: str
    value: float
    q: str = "cell"


#: The kinds that name a GIBLoss surrogate (they may carry Q's reading, ``<kind>/<q>``).
GIB_KINDS = ("gaussian_copula", "binning")


def parse_setting(setting: str) -> Setting:
    """``"plain"``, ``"<kind>:<value>"`` with a kind of :data:`KINDS`, or
    ``"<gib kind>/<q>:<value>"`` with ``q`` in ``{"cell", "z"}`` (``"gaussian_copula:1"`` is
    ``"gaussian_copula/cell:1"``): the one grammar of the robustness study
    (``recipes/regularised_vs_plain.py``) and the regulariser bench
    (``evaluation/bench_regulariser.py``)."""
    if setting == "plain":
        return Setting("plain", 0.0)
    kind, _, value = setting.partition(":")
    kind, _, q = kind.partition("/")
    if kind in RENAMED_KINDS:
        warn_renamed(f"the setting kind {kind!r}", repr(RENAMED_KINDS[kind]))
        kind = RENAMED_KINDS[kind]
    grammar = (
        "a setting is 'plain', '<kind>:<value>' with kind in "
        f"{KINDS[1:]}, or '<kind>/<q>:<value>' with kind in {GIB_KINDS} and q 'cell' or 'z'"
    )
    bad_q = bool(q) and (kind not in GIB_KINDS or q not in ("cell", "z"))
    if kind not in KINDS[1:] or not value or bad_q:
        raise ValueError(f"{grammar}, got {setting!r}")
    try:
        v = float(value)
    except ValueError:
        raise ValueError(f"{grammar}, got {setting!r}") from None
    if not (math.isfinite(v) and v >= 0):
        raise ValueError(f"the value of setting {setting!r} must be a non-negative number")
    return Setting(kind, v, q or "cell")


def load(cfg: dict[str, Any]) -> tuple[Dataset, torch.Tensor, torch.Tensor]:
    """The data, flattened train and test inputs in [0, 1].

    ``cfg["n_train"]`` / ``cfg["n_test"]`` (when set) keep the first rows of each split, and the
    description says so.
    """
    data = cifar10(cfg["data_dir"]) if cfg["dataset"] == "cifar10" else mnist(cfg["data_dir"])
    n_train, n_test = cfg.get("n_train"), cfg.get("n_test")
    if n_train is not None or n_test is not None:
        full = (len(data.y_train), len(data.y_test))
        data = data.subset(n_train, n_test)
        data.description += (
            f"; the first {len(data.y_train)} of {full[0]} training and {len(data.y_test)} of "
            f"{full[1]} test rows"
        )
    return data, data.x_train.flatten(1), data.x_test.flatten(1)


def build_model(cfg: dict[str, Any], n_in: int) -> torch.nn.Module:
    """The compared model; it takes flattened inputs in [0, 1]."""
    if cfg["dataset"] == "cifar10":
        return torch.nn.Sequential(
            torch.nn.Unflatten(1, (3, 32, 32)),
            Normalized(cifar_resnet(20), CIFAR10_MEAN, CIFAR10_STD),
        )
    return mlp([n_in, *cfg["hidden"], 10], "tanh")


def ib_layer(cfg: dict[str, Any]) -> str:
    """The monitored representation: the last 20-unit layer of the MLP, the ResNet's logits."""
    return "output" if cfg["dataset"] == "cifar10" else str(2 * len(cfg["hidden"]) - 1)

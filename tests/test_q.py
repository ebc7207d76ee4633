"""The one Q builder (gibloss.q.code_q): exact weights against the definition, computed here
without the package, and the hard codes as the zero-temperature limit of the soft memberships."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gibloss
from gibloss.functional import soft_q

MODES = ("ratio", "ppmi", "literal", "none")


def _definition(z_states: list, y: np.ndarray, mode: str) -> np.ndarray:
    """Q's per-sample weights from the contingency table of (Z state, Y), by counting."""
    n = len(y)
    pairs = list(zip(z_states, y.tolist(), strict=True))
    count: dict = {}
    for pair in pairs:
        count[pair] = count.get(pair, 0) + 1
    pz: dict = {}
    py: dict = {}
    for (zs, ys), c in count.items():
        pz[zs] = pz.get(zs, 0) + c / n
        py[ys] = py.get(ys, 0) + c / n
    w = np.empty(n)
    for j, (zs, ys) in enumerate(pairs):
        r = (count[(zs, ys)] / n) / (pz[zs] * py[ys])
        w[j] = {
            "ratio": r,
            "ppmi": max(np.log2(r), 0.0),
            "literal": r / count[(zs, ys)],
            "none": 1.0,
        }[mode]
    return w / w.sum()


def _argmax_states(logits: np.ndarray) -> list:
    return [int(k) for k in logits.argmax(1)]


def _probs_states(logits: np.ndarray, bins: int) -> list:
    e = np.exp(logits - logits.max(1, keepdims=True))
    p = e / e.sum(1, keepdims=True)
    return [tuple(row) for row in np.clip(np.floor(p * bins), 0, bins - 1).astype(int).tolist()]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("z_code", ["argmax", "probs"])
def test_exact_weights_are_the_definition(mode: str, z_code: str) -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, size=300)
    logits = 1.5 * np.eye(3)[y] + rng.normal(size=(300, 3))
    states = _argmax_states(logits) if z_code == "argmax" else _probs_states(logits, 4)
    qv = gibloss.build_q(logits, y, pmi=mode, z_code=z_code, bins=4)
    np.testing.assert_allclose(qv.weights, _definition(states, y, mode), rtol=0, atol=1e-12)
    # Q's value is the cell (Z state, Y): the same partition of the rows
    cells = [(s, int(t)) for s, t in zip(states, y, strict=True)]
    for c in set(cells):
        rows = np.flatnonzero([cc == c for cc in cells])
        assert np.unique(qv.codes[rows]).size == 1
    assert np.unique(qv.codes).size == len(set(cells))


@pytest.mark.parametrize("mode", MODES)
def test_hard_codes_are_the_soft_memberships_at_zero_temperature(mode: str) -> None:
    rng = np.random.default_rng(4)
    y = rng.integers(0, 4, size=200)
    logits = torch.tensor(2.0 * np.eye(4)[y] + rng.normal(size=(200, 4)))
    soft = soft_q(logits, torch.tensor(y), pmi=mode, temperature=1e-6)
    hard = gibloss.build_q(logits, y, pmi=mode, z_code="argmax")
    np.testing.assert_allclose(soft.mass.sum(1).numpy(), hard.weights, rtol=0, atol=1e-12)


def test_regression_bins_are_the_soft_bins_at_zero_temperature() -> None:
    rng = np.random.default_rng(5)
    out = rng.normal(size=400)
    target = out + 0.3 * rng.normal(size=400)
    soft = soft_q(torch.tensor(out), torch.tensor(target), temperature=1e-6, bins=7)
    hard = gibloss.build_q(out, target, bins=7)
    np.testing.assert_allclose(soft.mass.sum(1).numpy(), hard.weights, rtol=0, atol=1e-9)
    # the bins of the output are equal-width over its range, as counted here
    states = np.clip(np.floor((out - out.min()) / np.ptp(out) * 7), 0, 6).astype(int).tolist()
    t_states = np.clip(np.floor((target - target.min()) / np.ptp(target) * 7), 0, 6).astype(int)
    np.testing.assert_allclose(hard.weights, _definition(states, t_states, "ratio"), atol=1e-12)


def test_one_logit_is_read_once_for_both_paths() -> None:
    rng = np.random.default_rng(6)
    y = rng.integers(0, 2, size=150)
    logit = 2.0 * (y - 0.5) + rng.normal(size=150)
    two = np.stack([np.zeros(150), logit], axis=1)
    for labels in (y, y.astype(float), y.astype(bool)):
        np.testing.assert_array_equal(
            gibloss.build_q(logit, labels, z_code="argmax").weights,
            gibloss.build_q(two, y, z_code="argmax").weights,
        )
        a = soft_q(torch.tensor(logit), torch.tensor(labels)).mass
        b = soft_q(torch.tensor(two), torch.tensor(y)).mass
        torch.testing.assert_close(a, b, rtol=0, atol=0)

"""Probes where rules differ, the synergy map and the synergy-share term, against exact truth.

Truth here is counted from truth tables (no gibloss code) or is a closed form: the influence and
Walsh weights of majority, the interaction information of XOR and of a sum of bits.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import gibloss
from gibloss.probes import SynergyShareLoss, independent_probe, synergy_map

ROOT = Path(__file__).resolve().parents[1]


def _cube(n_bits: int) -> np.ndarray:
    return np.array(list(itertools.product([0, 1], repeat=n_bits)), dtype=np.int64)


def _mi(a: np.ndarray, b: np.ndarray) -> float:
    """Plug-in MI (bits) of two discrete arrays, counted here."""
    ja = np.unique(a, return_inverse=True)[1].reshape(-1)
    jb = np.unique(b, return_inverse=True)[1].reshape(-1)
    joint = np.zeros((ja.max() + 1, jb.max() + 1))
    np.add.at(joint, (ja, jb), 1.0)
    joint /= joint.sum()
    pa, pb = joint.sum(1), joint.sum(0)
    nz = joint > 0
    return float((joint[nz] * np.log2(joint[nz] / np.outer(pa, pb)[nz])).sum())


def _rows(x: np.ndarray) -> np.ndarray:
    return x @ (1 << np.arange(x.shape[1]))


def test_independent_probe_keeps_marginals_and_breaks_dependence() -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(0, 2, 4000)
    x = np.stack([a, a, 1 - a, rng.integers(0, 3, 4000)], axis=1)  # three dependent columns
    p = independent_probe(x, 4000, seed=1)
    assert p.shape == (4000, 4)
    assert _mi(x[:, 0], x[:, 1]) == pytest.approx(1.0, abs=1e-3)
    assert _mi(p[:, 0], p[:, 1]) < 0.01 and _mi(p[:, 0], p[:, 2]) < 0.01
    for j in range(4):  # marginals kept
        assert abs(p[:, j].mean() - x[:, j].mean()) < 0.05
    t = independent_probe(torch.tensor(x, dtype=torch.float32), 10, seed=2)
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32 and t.shape == (10, 4)
    with pytest.raises(ValueError, match="`n` must be a positive integer"):
        independent_probe(x, 0)


@pytest.mark.parametrize(
    ("name", "fn"),
    [
        ("xor", lambda x: x[:, 0] ^ x[:, 1]),
        ("majority of 3", lambda x: (x[:, :3].sum(1) >= 2).astype(np.int64)),
        ("sum of 2 (additive)", lambda x: x[:, 0] + x[:, 1]),
        ("dictator", lambda x: x[:, 0]),
    ],
)
def test_synergy_map_of_known_functions_on_the_cube(name, fn) -> None:
    x = _cube(4)
    f = fn(x)
    m = synergy_map(x, f)
    whole = _mi(f, _rows(x))
    for i in range(4):
        rest = np.delete(x, i, axis=1)
        ii = whole - _mi(f, _rows(rest)) - _mi(f, x[:, i])
        assert m.interaction[i] * m.whole == pytest.approx(ii, abs=1e-12)
        # independent bits: II_i = I(X^i; X^{-i} | Q) >= 0
        assert m.interaction[i] >= -1e-12
    expected = {"xor": [1, 1, 0, 0], "sum of 2 (additive)": [0.5 / 1.5, 0.5 / 1.5, 0, 0],
                "dictator": [0, 0, 0, 0]}
    if name in expected:
        np.testing.assert_allclose(m.interaction, expected[name], atol=1e-12)
    np.testing.assert_allclose(m.interaction, m.total_effect - m.single, atol=1e-12)


def test_synergy_map_bootstrap_intervals() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, size=(3000, 3))
    m = synergy_map(x, x[:, 0] ^ x[:, 1], n_boot=40)
    lo, hi = m.intervals["synergy_share"]
    assert lo <= m.synergy_share <= hi and hi - lo < 0.1
    assert m.intervals["interaction"].shape == (2, 3)
    with pytest.raises(ValueError, match="`n_boot`"):
        synergy_map(x, x[:, 0], n_boot=-1)


def test_synergy_share_term_equals_the_exact_value_with_hard_memberships() -> None:
    x = _cube(5)
    for f in (x[:, 0] ^ x[:, 1], (x.sum(1) >= 3).astype(np.int64), x[:, 2]):
        hard = torch.nn.functional.one_hot(torch.tensor(f), 2).double() * 60.0
        term = SynergyShareLoss()
        term(torch.tensor(x, dtype=torch.float64), hard)
        exact = gibloss.gib(x, f, None, q="z", pmi="none").synergy_share
        assert float(term.last_terms.synergy_share) == pytest.approx(exact, abs=1e-9)


def test_the_sign_of_the_weight_sets_the_direction() -> None:
    x = torch.tensor(2.0 * _cube(4) - 1.0)
    shares = {}
    for weight in (1.0, -1.0):
        torch.manual_seed(0)
        model = torch.nn.Sequential(
            torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2)
        ).double()
        opt = torch.optim.Adam(model.parameters(), lr=0.02)
        term = SynergyShareLoss(weight=weight)
        for _ in range(40):
            loss = term(x, model(x))
            opt.zero_grad()
            loss.backward()
            opt.step()
        shares[weight] = float(term.last_terms.synergy_share)
    assert shares[1.0] > shares[-1.0] + 0.1, shares
    with pytest.raises(ValueError, match="`weight` must be a finite number"):
        SynergyShareLoss(weight=float("nan"))


def _lab():
    spec = importlib.util.spec_from_file_location("boolean_lab", ROOT / "recipes/boolean_lab.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_lab_measures_majority_exactly() -> None:
    lab = _lab()
    x = lab.cube(9)
    maj = (x[:, :5].sum(1) >= 3).astype(np.int64)
    m = lab.measure_function(maj, 9)
    assert m["total_influence"] == pytest.approx(5 * 6 / 16, abs=1e-12)  # 5 · C(4,2)/2^4
    assert m["walsh_weight_deg3plus"] == pytest.approx(1 - 5 * (3 / 8) ** 2, abs=1e-12)
    # noise sensitivity from its definition, by enumeration of the flip patterns
    delta = 0.1
    idx = np.arange(512)
    ns = 0.0
    for flips in itertools.product([0, 1], repeat=5):  # only the 5 relevant bits matter
        p = np.prod([delta if b else 1 - delta for b in flips])
        mask = sum(1 << (8 - i) for i, b in enumerate(flips) if b)
        ns += p * np.mean(maj != maj[idx ^ mask])
    assert m["noise_sensitivity_0.1"] == pytest.approx(ns, abs=1e-12)


@pytest.mark.slow
def test_lab_quick_run_and_resume(tmp_path: Path, capsys) -> None:
    lab = _lab()
    out = tmp_path / "lab"
    assert lab.main(["--quick", "--output-dir", str(out)]) == 0
    report = (out / "report.md").read_text()
    assert report.startswith("# Boolean lab") and "## Answer" in report
    for task in ("A-S", "A-A", "B"):
        assert f"**{task}**" in report and f"## Task {task}" in report
    n = len([r for r in gibloss.read_records(out / "records.jsonl") if r.get("kind") == "run"])
    assert n == 2 * 3 * 10  # 2 seeds × 3 tasks × 10 arms (one strength each)
    assert lab.main(["--quick", "--output-dir", str(out)]) == 2  # no silent overwrite
    assert lab.main(["--quick", "--output-dir", str(out), "--resume"]) == 0
    assert "60 already recorded" in capsys.readouterr().out
    assert json.loads((out / "config.json").read_text())["steps"] == 60

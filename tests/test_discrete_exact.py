"""Exact discrete cases: closed-form synergy values, cross-checked with `dit` as an oracle."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import gibloss

dit = pytest.importorskip("dit")
from dit.shannon import mutual_information as dit_mi  # noqa: E402

ESTIMATORS = ["binning", "kde", "gaussian_copula"]  # all fall back to plug-in on symbols


def _enumerate(n_inputs: int) -> np.ndarray:
    return np.array(list(itertools.product([0, 1], repeat=n_inputs)), dtype=np.int64)


def _dit_synergy(x: np.ndarray, y: np.ndarray) -> float:
    """Eq. 2 computed entirely by dit on the uniform distribution over the enumerated rows."""
    rows = np.hstack([x, y])
    outcomes = ["".join(str(int(v)) for v in r) for r in rows]
    d = dit.Distribution(outcomes, [1.0 / len(outcomes)] * len(outcomes))
    n = x.shape[1]
    ys = list(range(n, rows.shape[1]))
    whole = dit_mi(d, list(range(n)), ys)
    terms = 0.0
    for i in range(n):
        terms += dit_mi(d, [i], ys)
        terms += dit_mi(d, [j for j in range(n) if j != i], ys)
    return whole - terms / n


X2 = _enumerate(2)
X3 = _enumerate(3)
CASES = {
    # name: (x, y, closed-form synergy in bits)
    "xor": (X2, (X2[:, 0] ^ X2[:, 1])[:, None], 1.0),
    "redundancy": (np.hstack([X2[:, :1], X2[:, :1]]), X2[:, :1], -1.0),
    "parity3": (X3, (X3[:, 0] ^ X3[:, 1] ^ X3[:, 2])[:, None], 1.0),
    "and": (X2, (X2[:, 0] & X2[:, 1])[:, None], None),
    "copy": (X2, X2.copy(), 0.0),
}


def _and_closed_form() -> float:
    h_y = -(0.25 * math.log2(0.25) + 0.75 * math.log2(0.75))  # I(X;Y) = H(Y)
    # I(X1;Y) = H(Y) - H(Y|X1) = H(Y) - 0.5 * H(Bernoulli(0.5)) = H(Y) - 0.5
    single = h_y - 0.5
    return h_y - (4 * single) / 2


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_synergy_closed_form_and_dit(name: str, estimator: str) -> None:
    x, y, expected = CASES[name]
    if expected is None:
        expected = _and_closed_form()
    ours = gibloss.synergy(x, y, estimator=estimator)
    assert ours == pytest.approx(expected, abs=1e-12)
    assert ours == pytest.approx(_dit_synergy(x, y), abs=1e-9)


def test_mutual_information_matches_dit_on_random_distribution() -> None:
    rng = np.random.default_rng(3)
    x = rng.integers(0, 3, size=(400, 2))
    y = (x[:, 0] + rng.integers(0, 2, size=400)) % 3
    outcomes = [f"{a}{b}{c}" for (a, b), c in zip(x, y, strict=True)]
    uniq, counts = np.unique(outcomes, return_counts=True)
    d = dit.Distribution(list(uniq), list(counts / counts.sum()))
    assert gibloss.mutual_information(x, y) == pytest.approx(dit_mi(d, [0, 1], [2]), abs=1e-9)
    assert gibloss.mutual_information(x[:, 0], y) == pytest.approx(dit_mi(d, [0], [2]), abs=1e-9)


# --- The paper's appendix E.1: force-to-1 noise, exact enumeration -----------------------------


def _e1_joint(n: int, func: str) -> dict[tuple[int, int, int], float]:
    """Exact joint P(x, eps, f) of the force-to-1 model, by enumeration with Python floats."""
    joint: dict[tuple[int, int, int], float] = {}
    for xi, bits in enumerate(itertools.product([0, 1], repeat=n)):
        for eps in range(n + 1):
            p = 2**-n * ((2 / 3) if eps == 0 else (1 / 3) / n)
            noisy = list(bits)
            if eps > 0:
                noisy[eps - 1] = 1
            if func == "f1":
                f = noisy[0]
            elif func == "f2":
                f = noisy[0] ^ noisy[1]
            else:
                f = 0
                for b in noisy:
                    f ^= b
            key = (xi, eps, f)
            joint[key] = joint.get(key, 0.0) + p
    return joint


def _exact_mi(joint: dict[tuple[int, int, int], float], a: int, b: int) -> float:
    pa: dict[int, float] = {}
    pb: dict[int, float] = {}
    pab: dict[tuple[int, int], float] = {}
    for key, p in joint.items():
        pa[key[a]] = pa.get(key[a], 0.0) + p
        pb[key[b]] = pb.get(key[b], 0.0) + p
        pab[(key[a], key[b])] = pab.get((key[a], key[b]), 0.0) + p
    return sum(p * math.log2(p / (pa[i] * pb[j])) for (i, j), p in pab.items() if p > 0)


@pytest.mark.parametrize("n", range(2, 11))
def test_appendix_e1_exact_enumeration(n: int) -> None:
    values = {}
    for func in ("f1", "f2", "f3"):
        joint = _e1_joint(n, func)
        keys = np.array(list(joint.keys()), dtype=np.int64)
        probs = np.array(list(joint.values()))
        ours_eps = gibloss.mutual_information(keys[:, 2], keys[:, 1], weights=probs)
        ours_x = gibloss.mutual_information(keys[:, 2], keys[:, 0], weights=probs)
        exact_eps = _exact_mi(joint, 2, 1)
        exact_x = _exact_mi(joint, 2, 0)
        assert ours_eps == pytest.approx(exact_eps, abs=1e-10)
        assert ours_x == pytest.approx(exact_x, abs=1e-10)
        values[func] = (exact_eps, exact_x)
    # The paper's Fig. 3a: the more synergistic the function, the less it depends on the noise
    # and on the clean input.
    assert values["f3"][0] <= values["f2"][0] + 1e-12 <= values["f1"][0] + 2e-12
    assert values["f3"][1] <= values["f1"][1] + 1e-12

"""The exact split of the GIB complexity, C = ½ I(X;Q) (1 − s̄), against truth computed here.

For a Boolean function f of N uniform bits, with Q = f(X) (``q="z"``, ``pmi="none"``, no labels)
on the whole cube, ``H(f | X^{-i})`` is the influence of bit i, ``P[f(x) != f(x ^ e_i)]``, so

    C = ½ H(f) − TotInf(f) / (2N) + Σ_i I(X^i; f) / (2N).

The influences, entropies and single-bit informations below are counted directly from the truth
table (no gibloss code), and compared with what ``gibloss.gib`` returns.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import gibloss
from gibloss.functional import gib_terms
from gibloss.split import split_change


def _cube(n_bits: int) -> np.ndarray:
    return np.array(list(itertools.product([0, 1], repeat=n_bits)), dtype=np.int64)


def _entropy(values: np.ndarray) -> float:
    _, counts = np.unique(values, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


def _truth(x: np.ndarray, f: np.ndarray) -> dict[str, object]:
    """Influences, H(f) and I(X^i; f), counted from the truth table."""
    n, n_bits = x.shape
    index = x @ (1 << np.arange(n_bits - 1, -1, -1))  # row r is the binary number r
    f_by_index = np.empty(n, dtype=f.dtype)
    f_by_index[index] = f
    influence = np.array(
        [np.mean(f != f_by_index[index ^ (1 << (n_bits - 1 - i))]) for i in range(n_bits)]
    )
    h_f = _entropy(f)
    single = np.array(
        [h_f - sum(0.5 * _entropy(f[x[:, i] == b]) for b in (0, 1)) for i in range(n_bits)]
    )
    return {"influence": influence, "h_f": h_f, "single": single}


TABLE = [  # (name, f, C, total influence, Σ I(X^i; f)) at N = 5: quoted in docs/theory.md
    ("dictator x1", lambda x: x[:, 0], 0.5, 1.0, 1.0),
    ("majority of 5", lambda x: (x.sum(1) >= 3).astype(np.int64), 0.3645, 1.875, 5 * 0.1040),
    ("x1 xor x2", lambda x: x[:, 0] ^ x[:, 1], 0.3, 2.0, 0.0),
    ("parity of 5", lambda x: x.sum(1) % 2, 0.0, 5.0, 0.0),
]


@pytest.mark.parametrize(("name", "fn", "c_expected", "tot_inf", "single_sum"), TABLE)
def test_boolean_table(name, fn, c_expected, tot_inf, single_sum) -> None:
    x = _cube(5)
    f = fn(x)
    res = gibloss.gib(x, f, None, q="z", pmi="none")
    truth = _truth(x, f)
    assert res.complexity == pytest.approx(c_expected, abs=5e-5)
    assert float(truth["influence"].sum()) == pytest.approx(tot_inf, abs=1e-12)
    assert float(truth["single"].sum()) == pytest.approx(single_sum, abs=5e-4)
    np.testing.assert_allclose(res.total_effect, truth["influence"], atol=1e-12, rtol=0)
    assert math.isnan(res.prediction) and res.settings["labels"] is None


@given(st.integers(1, 6), st.data())
def test_boolean_identity_on_random_truth_tables(n_bits, data) -> None:
    x = _cube(n_bits)
    f = np.array(data.draw(st.lists(st.integers(0, 3), min_size=2**n_bits, max_size=2**n_bits)))
    res = gibloss.gib(x, f, None, q="z", pmi="none")
    truth = _truth(x, f)
    expected = (
        0.5 * truth["h_f"]
        - truth["influence"].sum() / (2 * n_bits)
        + truth["single"].sum() / (2 * n_bits)
    )
    assert res.complexity == pytest.approx(expected, abs=1e-12)
    assert res.whole == pytest.approx(truth["h_f"], abs=1e-12)  # Q is a function of X
    # the split: C = ½ I(X;Q) (1 − s̄), exactly
    assert res.complexity == pytest.approx(0.5 * res.whole * (1 - res.synergy_share), abs=1e-12)
    np.testing.assert_allclose(res.total_effect, truth["influence"], atol=1e-12, rtol=0)


@pytest.mark.parametrize("estimator", ["binning", "gaussian_copula"])
@pytest.mark.parametrize("beta", [1.0, 0.25])
def test_split_holds_for_labelled_gib_and_the_loss(estimator: str, beta: float) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4))
    y = (x[:, 0] + x[:, 1] * x[:, 2] > 0).astype(np.int64)
    logits = np.stack([-x[:, 0], x[:, 0] + x[:, 1] * x[:, 2]], axis=1)
    bins = {"bins": 4} if estimator == "binning" else {}
    res = gibloss.gib(x, logits, y, estimator=estimator, beta=beta, **bins)
    assert res.complexity == pytest.approx(
        0.5 * res.whole * (1 - res.synergy_share) / beta, rel=1e-12
    )
    np.testing.assert_allclose(res.total_effect, res.whole - res.complement, rtol=0, atol=0)
    terms = gib_terms(
        x, torch.tensor(logits), torch.tensor(y), estimator=estimator, beta=beta, **bins
    )
    assert float(terms.complexity) == pytest.approx(
        0.5 * float(terms.whole) * (1 - float(terms.synergy_share)) / beta, rel=1e-12
    )
    assert "synergy_share" in terms.as_dict() and "synergy_share" in res.as_dict()


def test_split_of_a_change_adds_up_exactly() -> None:
    info, share = [4.8, 4.1, 2.7], [0.06, 0.07, 0.08]
    c = [0.5 * i * (1 - s) for i, s in zip(info, share, strict=True)]  # Eq. 5, beta = 1
    s = split_change(c, info, share)
    assert s.information_part + s.synergy_part == pytest.approx(s.log_ratio, abs=1e-12)
    assert s.information_part == pytest.approx(math.log(2.7 / 4.8), abs=1e-12)
    assert s.information_fraction + s.synergy_fraction == pytest.approx(1.0, abs=1e-12)
    assert "% from I(X;Q)" in s.sentence()
    with pytest.raises(ValueError, match="`information` must be positive"):
        split_change([1.0, 0.5], [0.0, 1.0], [0.1, 0.1])
    with pytest.raises(ValueError, match="same length"):
        split_change([1.0], [1.0], [0.1])
    # complexities that are not I(X;Q)(1 - s)/(2 beta) at one beta (Eq. 17, or beta changed)
    with pytest.raises(ValueError, match="the split holds for Eq. 5 at a fixed beta only"):
        split_change([1.0, 1.0], [2.0, 1.0], [0.0, 0.0])


def test_labels_may_be_omitted_only_for_the_output_alone() -> None:
    x = _cube(3)
    with pytest.raises(ValueError, match="`y` may be None only with q='z'"):
        gibloss.gib(x, x[:, 0], None)
    with pytest.raises(ValueError, match="`y` may be None only with q='z'"):
        gibloss.gib(x, x[:, 0], None, q="z", pmi="ratio")


def test_the_public_api_is_sorted_importable_and_in_the_module_docstring() -> None:
    names = [n for n in gibloss.__all__ if n != "__version__"]
    assert names == sorted(names)
    for name in names:
        assert getattr(gibloss, name) is not None
        assert name in gibloss.__doc__, name

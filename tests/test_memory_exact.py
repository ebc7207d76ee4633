"""The loss's memory path against the exact Gaussian-copula estimator.

The default ``GIBLoss`` trains through cell sums remembered across batches
(``estimators._gaussian.terms_from_moments``), the exact estimator through
``class_conditional_terms`` on the rows. With hard memberships they must be one estimator:
on one batch the memory path equals ``gibloss.gib`` (constant columns dropped and their
complements filled alike), and after several batches it equals the exact core on the pooled
rows.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gibloss
from gibloss.estimators._gaussian import class_conditional_terms
from gibloss.estimators.gcmi import copula_ranks
from gibloss.functional import gib_terms, soft_q

HARD = {"estimator": "gaussian_copula", "temperature": 1e-4, "null": False}


def _batch(seed: int, n: int, d: int, k: int, constant: bool) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    x = rng.normal(size=(n, d)) + 0.8 * y[:, None]
    if constant:
        x[:, 1] = 2.5  # a constant column: no information, dropped by the exact estimator
    logits = 3.0 * rng.normal(size=(n, k))
    logits[np.arange(n), logits.argmax(axis=1)] += 1.0  # a gap of 1: softmax(z / 1e-4) is one-hot
    return x, logits, y


@pytest.mark.parametrize("pmi", ["none", "ratio"])
@pytest.mark.parametrize("constant", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_memory_path_on_one_batch_equals_the_exact_estimator(
    seed: int, constant: bool, pmi: str
) -> None:
    x, logits, y = _batch(seed, n=240, d=4, k=3, constant=constant)
    t = gib_terms(torch.tensor(x), torch.tensor(logits), torch.tensor(y), pmi=pmi,
                  memory_decay=0.5, **HARD)
    e = gibloss.gib(x, logits, y, estimator="gaussian_copula", pmi=pmi)
    np.testing.assert_allclose(float(t.whole), e.whole, atol=1e-9)
    np.testing.assert_allclose(t.single.numpy(), e.single, atol=1e-9)
    np.testing.assert_allclose(t.complement.numpy(), e.complement, atol=1e-9)
    if constant:
        assert float(t.single[1]) == 0.0 and float(t.complement[1]) == pytest.approx(e.whole)


@pytest.mark.parametrize("constant", [False, True])
def test_memory_path_after_batches_equals_the_exact_core_on_the_pooled_rows(
    constant: bool,
) -> None:
    # full memory: every remembered row weighs as much as a new one (up to 1e-9); the memory's
    # sums of w^2 decay like its sums of w, so at lower decays its effective size is its own
    # convention (about 1 / (1 - decay) batches), not that of the decay-weighted pooled rows
    decay = 1.0 - 1e-9
    memory = None
    gs, codes, masses = [], [], []
    for step in range(3):
        x, logits, y = _batch(10 + step, n=150, d=3, k=3, constant=constant)
        xt, zt, yt = torch.tensor(x), torch.tensor(logits), torch.tensor(y)
        t = gib_terms(xt, zt, yt, pmi="none", memory=memory, memory_decay=decay, **HARD)
        memory = t.diagnostics["memory"]
        # what the memory holds: every earlier batch's rows, weighted by decay ** age
        q = soft_q(zt.double(), yt, pmi="none", temperature=1e-4)
        gs.append(copula_ranks(xt))
        codes.append(q.hard * q.mass.shape[1] + q.mass.argmax(dim=1))
        masses = [m * decay for m in masses] + [q.mass.sum(dim=1)]
    g = torch.cat(gs)
    mass = torch.cat(masses)[:, None]
    keep = g.std(dim=0) > 0
    ref = class_conditional_terms(g[:, keep], torch.cat(codes), mass / mass.sum())
    np.testing.assert_allclose(float(t.whole), float(ref.whole), atol=1e-9)
    np.testing.assert_allclose(t.single.numpy()[keep.numpy()], ref.single.numpy(), atol=1e-9)
    comp = t.complement.numpy()
    if int(keep.sum()) > 1:
        np.testing.assert_allclose(comp[keep.numpy()], ref.complement.numpy(), atol=1e-9)
    np.testing.assert_allclose(comp[~keep.numpy()], float(ref.whole), atol=1e-9)

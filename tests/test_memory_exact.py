"""The loss's memory path against the exact Gaussian-copula estimator.

The default ``GIBLoss`` trains through cell sums remembered across batches
(``estimators._gaussian.MomentTerms``); the batch-only loss computes the terms from the rows
(``class_conditional_terms``). With hard memberships the memory path must be the exact
estimator: on one batch it equals ``gibloss.gib`` (constant columns dropped and their
complements filled alike), and after several batches it equals the row core on the pooled
rows. Its written backward is held to finite differences.
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


def _sums(g: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Packed cell sums of rows ``g`` under weights ``w`` ``(n, C)``, whole row last."""
    n, d = g.shape
    rows = torch.cat([torch.ones(n, 1, dtype=g.dtype), g, (g[:, :, None] * g[:, None, :])
                      .reshape(n, d * d)], dim=1)
    t = w.T @ rows
    row_mass = w.sum(dim=1)
    t_all = torch.cat([t, t.sum(dim=0, keepdim=True)])
    w2 = torch.cat([(w * w).sum(dim=0), (row_mass * row_mass).sum().reshape(1)])
    return t_all, w2


@pytest.mark.parametrize("bias_correct", [True, False])
@pytest.mark.parametrize(
    "case",
    ["plain", "shrunk cells", "shrunk cells at a unit target", "an empty cell",
     "a constant column", "one column"],
)
def test_the_memory_paths_written_backward_against_finite_differences(
    case: str, bias_correct: bool
) -> None:
    """``MomentTerms`` (cell sums -> terms, backward written out) under ``gradcheck``, through
    the weights of the rows (the sums are symmetric as in training), in every corner its
    backward treats apart: shrunk cells, an empty cell, a dropped constant column, d = 1."""
    from gibloss.estimators._gaussian import MomentTerms

    gen = torch.Generator().manual_seed(3)
    n, d, cells = (30, 1, 4) if case == "one column" else (40, 3, 4)
    label = torch.arange(n) % cells  # rows lean towards one cell each, shifted by it
    g = torch.randn(n, d, generator=gen, dtype=torch.float64) + 0.7 * label[:, None]
    w = 0.2 * torch.rand(n, cells, generator=gen, dtype=torch.float64)
    w = w + torch.nn.functional.one_hot(label, cells)
    if case.startswith("shrunk"):  # cell 0 on 4 rows: shrunk (n_eff <= d + 1), terms unclipped
        w[4:, 0] = 0.0
        # shrinkage target max(tr(S) / d, 1): above 1 at scale 2, clamped at 1 at scale 0.5
        g = g * (2.0 if case == "shrunk cells" else 0.5)
    if case == "a constant column":
        g[:, 1] = 0.0  # a constant column after the copula transform
    w = (w / w.sum()).requires_grad_(True)
    weights = torch.randn(3, d, generator=gen, dtype=torch.float64)

    def f(w: torch.Tensor) -> torch.Tensor:
        if case == "an empty cell":  # stays empty: a step of eps would make it a cell
            w = torch.cat([w[:, :2], torch.zeros_like(w[:, :1]), w[:, 3:]], dim=1)
        t, w2 = _sums(g, w)
        none = torch.zeros(0, dtype=torch.float64)
        whole, single, comp, h_q, *_ = MomentTerms.apply(
            t, w2, none, none, torch.ones((), dtype=torch.float64), d, 0.1, 1e-6, bias_correct
        )
        return weights[0, 0] * whole + weights[1] @ single + weights[2] @ comp + 0.3 * h_q

    assert torch.autograd.gradcheck(f, (w,), eps=1e-7, atol=1e-6)


@pytest.mark.parametrize("n", [40, 7])
def test_the_memory_paths_terms_equal_the_row_core_on_one_batch(n: int) -> None:
    """From one batch's sums, ``MomentTerms`` gives the terms that the batch-only core
    (``class_conditional_terms``, weighted covariances of the rows) gives on those rows, with
    soft memberships, shrunk cells (n = 7) included."""
    from gibloss.estimators._gaussian import MomentTerms

    gen = torch.Generator().manual_seed(4)
    d, n_hard, k = 3, 2, 3
    g = torch.randn(n, d, generator=gen, dtype=torch.float64)
    hard = torch.arange(n) % n_hard
    mass = torch.softmax(torch.randn(n, k, generator=gen, dtype=torch.float64), dim=1) / n
    w = (torch.nn.functional.one_hot(hard, n_hard).double()[:, :, None] * mass[:, None, :])
    t, w2 = _sums(g, w.reshape(n, n_hard * k))
    none = torch.zeros(0, dtype=torch.float64)
    whole, single, comp, h_q, shrunk, _ = MomentTerms.apply(
        t, w2, none, none, torch.ones((), dtype=torch.float64), d, 0.1, 1e-6, True
    )
    ref = class_conditional_terms(g, hard, mass)
    np.testing.assert_allclose(float(whole), float(ref.whole), atol=1e-12)
    np.testing.assert_allclose(single.numpy(), ref.single.numpy(), atol=1e-12)
    np.testing.assert_allclose(comp.numpy(), ref.complement.numpy(), atol=1e-12)
    assert float(h_q) == pytest.approx(float(ref.h_q), abs=1e-12)
    assert int(shrunk) == int(ref.n_shrunk) and (n > d + 1 or int(shrunk) > 0)

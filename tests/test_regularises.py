"""GIBLoss lowers the exact GIB complexity it claims to regularise (several seeds)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

import gibloss
from gibloss import GIBLoss


def _task(n: int = 600) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 6))
    y = (x[:, 0] + x[:, 1] > 0).astype(int) + (x[:, 2] * x[:, 3] > 0)
    flip = rng.random(n) < 0.1
    y[flip] = rng.integers(0, 3, flip.sum())
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y)


def _train(seed: int, weight: float, epochs: int = 60) -> tuple[float, float]:
    """Train a 6-32-3 tanh MLP (same seed and data order with or without the loss)."""
    x, y = _task()
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(6, 32), torch.nn.Tanh(), torch.nn.Linear(32, 3))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    gib = GIBLoss(estimator="gaussian_copula", weight=weight)
    order = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=order)
        for start in range(0, len(x), 100):
            idx = perm[start : start + 100]
            logits = model(x[idx])
            loss = F.cross_entropy(logits, y[idx])
            if weight > 0:
                loss = loss + gib(x[idx], logits, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        logits = model(x)
    accuracy = float((logits.argmax(1) == y).float().mean())
    exact = gibloss.gib(
        x.numpy(), logits.numpy(), y.numpy(), estimator="gaussian_copula"
    )  # the monitor
    return exact.complexity, accuracy


def test_gib_loss_lowers_exact_gib_complexity_across_seeds() -> None:
    plain, regularised = [], []
    for seed in range(3):
        plain.append(_train(seed, 0.0))
        regularised.append(_train(seed, 2.0))
    c_plain = np.array([p[0] for p in plain])
    c_reg = np.array([r[0] for r in regularised])
    # lower for every seed, and the gap between the means is larger than the seed-to-seed spread
    assert np.all(c_reg < c_plain)
    spread = max(c_plain.std(), c_reg.std())
    assert c_plain.mean() - c_reg.mean() > 2 * spread, (c_plain, c_reg)
    # the models still learn the task
    assert min(r[1] for r in regularised) > 0.75

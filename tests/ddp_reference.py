"""Fixed model and global batch shared by the distributed worker and its test."""

from __future__ import annotations

import torch

N_TOTAL = 32


def make_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)
    ).double()


def make_batch(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N_TOTAL, 6, generator=g, dtype=torch.float64)
    feats = x[:, :4] + 0.1 * torch.randn(N_TOTAL, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (N_TOTAL,), generator=g)
    return x, feats, y


def memory_steps(model: torch.nn.Module, gib, shard: slice) -> list[torch.Tensor]:
    """Three GIBLoss values of successive batches (seeds 2-4), the memory carried between them."""
    values = []
    for seed in (2, 3, 4):
        x, feats, y = make_batch(seed)
        with torch.no_grad():
            values.append(gib(feats[shard], model(x[shard]), y[shard]).detach())
    return values

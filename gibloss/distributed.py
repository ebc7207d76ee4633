"""The one place that knows about process groups.

GIB statistics are global: a soft contingency table, bin edges and row identities over the whole
batch. Under DDP / Accelerate each process holds a shard of the global batch, so before the loss is
computed every process gathers the shards — the features and labels as data, the model outputs
through an autograd-aware all-gather — and computes the global-batch estimate. The backward of that
all-gather sums the gradients that every process sends to each shard; as every process computes the
same loss, a shard's outputs receive ``world_size`` times the gradient of the loss, and DDP's
averaging of parameter gradients over ``world_size`` processes then gives exactly the gradient of a
single process on the concatenated batch.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist

__all__ = ["barrier", "gather_batch", "is_distributed", "is_main_process", "world_size"]


def is_distributed(group: dist.ProcessGroup | None = None) -> bool:
    """Whether a default (or the given) process group with more than one process is active."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size(group) > 1


def world_size(group: dist.ProcessGroup | None = None) -> int:
    """Number of processes (1 when not distributed)."""
    return dist.get_world_size(group) if is_distributed(group) else 1


def is_main_process(accelerator: Any = None) -> bool:
    """Whether this process writes shared files: the accelerator's main process, else rank 0 of
    an initialised process group, else (a single process) True."""
    if accelerator is not None:
        return bool(accelerator.is_main_process)
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return True


def barrier(accelerator: Any = None) -> None:
    """Wait for every process (through ``accelerator`` when given); no-op for a single process."""
    if accelerator is not None:
        accelerator.wait_for_everyone()
    elif dist.is_available() and dist.is_initialized():
        dist.barrier()


def _gather_sizes(n: int, device: torch.device, group: dist.ProcessGroup | None) -> list[int]:
    size = torch.tensor([n], dtype=torch.long, device=device)
    sizes = [torch.zeros_like(size) for _ in range(dist.get_world_size(group))]
    dist.all_gather(sizes, size, group=group)
    return [int(s.item()) for s in sizes]


def _pad(t: torch.Tensor, n: int) -> torch.Tensor:
    if t.shape[0] == n:
        return t
    pad = t.new_zeros((n - t.shape[0], *t.shape[1:]))
    return torch.cat([t, pad], dim=0)


class _AllGather(torch.autograd.Function):
    """All-gather whose backward sums each shard's gradient over the processes.

    Every process computes the loss on the whole gathered batch, so the gradient of its own
    shard is the sum, over processes, of the gradients each one sends back for that shard: one
    ``all_reduce`` of the stacked shard gradients, then this rank's slice. Written on the public
    collectives; ``torch.distributed.nn.functional.all_gather`` is deprecated.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, t: torch.Tensor, group: dist.ProcessGroup | None
    ) -> tuple[torch.Tensor, ...]:
        ctx.group = group
        ctx.rank = dist.get_rank(group)
        parts = [torch.empty_like(t) for _ in range(dist.get_world_size(group))]
        dist.all_gather(parts, t, group=group)
        return tuple(parts)

    @staticmethod
    def backward(ctx: Any, *grads: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        g = torch.stack(list(grads)).contiguous()
        dist.all_reduce(g, op=dist.ReduceOp.SUM, group=ctx.group)
        return g[ctx.rank], None


def gather_batch(
    x: torch.Tensor,
    outputs: torch.Tensor,
    y: torch.Tensor,
    group: dist.ProcessGroup | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Concatenate every process's ``(x, outputs, y)`` in rank order; identity when not distributed.

    ``x`` and ``y`` are gathered as data (no gradient); ``outputs`` through an all-gather whose
    backward sums gradients across processes.
    Shards of different lengths (a last, smaller batch) are padded for the collective and trimmed.
    """
    if not is_distributed(group):
        return x, outputs, y
    sizes = _gather_sizes(outputs.shape[0], outputs.device, group)
    n_max = max(sizes)
    xs = [torch.empty((n_max, *x.shape[1:]), dtype=x.dtype, device=x.device) for _ in sizes]
    ys = [torch.empty((n_max, *y.shape[1:]), dtype=y.dtype, device=y.device) for _ in sizes]
    dist.all_gather(xs, _pad(x.detach().contiguous(), n_max), group=group)
    dist.all_gather(ys, _pad(y.detach().contiguous(), n_max), group=group)
    outs = _AllGather.apply(_pad(outputs.contiguous(), n_max), group)
    return (
        torch.cat([t[:s] for t, s in zip(xs, sizes, strict=True)]),
        torch.cat([t[:s] for t, s in zip(outs, sizes, strict=True)]),
        torch.cat([t[:s] for t, s in zip(ys, sizes, strict=True)]),
    )

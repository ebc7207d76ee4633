"""What a call costs besides time: aten calls (kernel launches on a GPU) and peak tensor memory.

Shared by the benchmark scripts of this folder; device-agnostic (a ``TorchDispatchMode`` sees
every aten call that autograd and the Python code make, forward and backward).
"""

from __future__ import annotations

import collections
import weakref
from collections.abc import Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode

__all__ = ["aten_calls", "peak_tensor_bytes"]


class _Recorder(TorchDispatchMode):
    def __init__(self, track_memory: bool) -> None:
        super().__init__()
        self.calls: collections.Counter[str] = collections.Counter()
        self.track_memory = track_memory
        self.live = 0
        self.peak = 0
        self._seen: set[int] = set()

    def _track(self, t: torch.Tensor) -> None:
        storage = t.untyped_storage()
        key = storage.data_ptr()
        if key in self._seen or storage.nbytes() == 0:
            return  # a view, or a storage already counted
        self._seen.add(key)
        self.live += storage.nbytes()
        self.peak = max(self.peak, self.live)

        def freed(key: int = key, nbytes: int = storage.nbytes()) -> None:
            self._seen.discard(key)
            self.live -= nbytes

        weakref.finalize(t, freed)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        self.calls[func.overloadpacket.__name__] += 1
        out = func(*args, **(kwargs or {}))
        if self.track_memory:
            for t in out if isinstance(out, (tuple, list)) else (out,):
                if isinstance(t, torch.Tensor):
                    self._track(t)
        return out


def aten_calls(fn: Callable[[], object]) -> tuple[int, list[tuple[str, int]]]:
    """Number of aten calls of one ``fn()`` and the eight most frequent ops."""
    with _Recorder(track_memory=False) as rec:
        fn()
    return sum(rec.calls.values()), rec.calls.most_common(8)


def peak_tensor_bytes(fn: Callable[[], object]) -> int:
    """Peak bytes of the tensors that ``fn()`` allocates and holds at once (its own working
    memory: inputs that existed before the call are not counted). Measured from the storages
    that aten calls return, freed when their last tensor goes; the same on every device."""
    with _Recorder(track_memory=True) as rec:
        fn()
    return rec.peak

"""The paper's architectures, importable by recipes, benchmarks and tests.

* :func:`cifar_resnet` — the CIFAR ResNet of He et al. (2016): 3×3 stem, three stages of
  BasicBlocks with 16/32/64 filters, global average pooling, a linear classifier; depth ``6n + 2``
  (20, 32, 44, 56, 80, 110, ...). Option-A (parameter-free) shortcuts as in the original.
* :func:`mlp` — fully connected networks with a chosen activation (the paper's 12-10-7-5-4-3-2
  network, the 784-1024-20-20-20-10 tanh network of appendix E.6, ...).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ACTIVATIONS",
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "BasicBlock",
    "CifarResNet",
    "Normalized",
    "Square",
    "cifar_resnet",
    "crop_flip",
    "mlp",
]


class Square(nn.Module):
    """``x -> x ** 2`` (the simple-function networks of appendix E.3)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * x


ACTIVATIONS: dict[str, type[nn.Module]] = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "softplus": nn.Softplus,
    "swish": nn.SiLU,
    "leaky_relu": nn.LeakyReLU,
    "sigmoid": nn.Sigmoid,
    "identity": nn.Identity,
    "square": Square,
}


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with batch norm and an identity (zero-padded, option A) shortcut."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.stride = stride
        self.pad = planes - in_planes

    def _shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1 and self.pad == 0:
            return x
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self._shortcut(x))


class CifarResNet(nn.Module):
    """CIFAR ResNet with ``n`` BasicBlocks per stage (depth ``6n + 2``)."""

    def __init__(self, blocks_per_stage: int, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        layers: list[nn.Module] = []
        in_planes = 16
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(blocks_per_stage):
                layers.append(BasicBlock(in_planes, planes, stride if i == 0 else 1))
                in_planes = planes
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layers(out)
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.fc(out)


CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


class Normalized(nn.Module):
    """A model that takes inputs in ``[0, 1]`` and normalises them inside (RobustBench style)."""

    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model((x - self.mean) / self.std)


def crop_flip(x: torch.Tensor, generator: torch.Generator, padding: int = 4) -> torch.Tensor:
    """Random crops (zero padding ``padding``) and horizontal flips of a batch ``(n, c, h, w)``.

    Deterministic given ``generator`` (so a resumed run sees the same augmentations).
    """
    n, _, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    flip = torch.rand(n, generator=generator) < 0.5
    rows = (dy[:, None] + torch.arange(h)[None, :]).to(x.device)
    cols = (dx[:, None] + torch.arange(w)[None, :]).to(x.device)
    out = padded[
        torch.arange(n, device=x.device)[:, None, None, None],
        torch.arange(x.shape[1], device=x.device)[None, :, None, None],
        rows[:, None, :, None],
        cols[:, None, None, :],
    ]
    return torch.where(flip.to(x.device)[:, None, None, None], out.flip(3), out)


def cifar_resnet(depth: int = 20, num_classes: int = 10) -> CifarResNet:
    """ResNet-``depth`` for 32×32 inputs; ``depth`` must be ``6n + 2`` (20, 32, 44, 56, 110...).

    Examples
    --------
    >>> import torch
    >>> from gibloss._recipes.models import cifar_resnet
    >>> cifar_resnet(20)(torch.randn(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    """
    if not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
        raise ValueError(f"`depth` must be 6n + 2 (20, 32, 44, 56, 110, ...), got {depth!r}")
    return CifarResNet((depth - 2) // 6, num_classes)


def mlp(
    sizes: Sequence[int],
    activation: str = "tanh",
    bias: bool = True,
    final_activation: bool = False,
) -> nn.Sequential:
    """A fully connected network ``sizes[0] -> ... -> sizes[-1]``.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths including input and output, e.g. ``(12, 10, 7, 5, 4, 3, 2)``.
    activation : str
        One of :data:`ACTIVATIONS` (after every hidden layer).
    bias : bool
        Whether linear layers have biases (the paper's simple functions use none).
    final_activation : bool
        Apply the activation after the last layer too.

    Examples
    --------
    >>> from gibloss._recipes.models import mlp
    >>> mlp((12, 10, 7, 5, 4, 3, 2), "relu")[0]
    Linear(in_features=12, out_features=10, bias=True)
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"`activation` must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    if len(sizes) < 2 or any(int(s) < 1 for s in sizes):
        raise ValueError(f"`sizes` must hold at least two positive widths, got {sizes!r}")
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(int(a), int(b), bias=bias))
        if i < len(sizes) - 2 or final_activation:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)

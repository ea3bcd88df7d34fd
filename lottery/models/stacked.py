"""K independent networks of one fully connected architecture as one batched computation.

Small networks leave the hardware idle; stacking K of them along a leading member dimension turns K small
matmuls into one ``baddbmm`` and K optimizers into one (Adam is elementwise, so one Adam over stacked
tensors equals K separate Adams). Member m's weight ``[m]`` has ``nn.Linear``'s layout and the parameter
names match the unstacked network's, so ``lottery.init`` gives member m exactly the w0 its own spec gives
the plain network (see ``mark_stacked``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from lottery.init.apply import mark_stacked


class StackedLinear(nn.Module):
    """``members`` Linear layers: input ``[K, B, in]`` (or ``[B, in]``, shared), output ``[K, B, out]``."""

    def __init__(self, members: int, in_features: int, out_features: int) -> None:
        super().__init__()
        self.members, self.in_features, self.out_features = members, in_features, out_features
        self.weight = nn.Parameter(torch.empty(members, out_features, in_features))
        self.bias = nn.Parameter(torch.empty(members, out_features))
        mark_stacked(self.weight, members)
        mark_stacked(self.bias, members)
        bound = 1 / math.sqrt(in_features)  # nn.Linear's default, until lottery.init sets the real start
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.expand(self.members, *x.shape)
        return torch.baddbmm(self.bias.unsqueeze(1), x, self.weight.transpose(1, 2))

    def extra_repr(self) -> str:
        return f"members={self.members}, in_features={self.in_features}, out_features={self.out_features}"


class StackedFlatten(nn.Module):
    """Flatten each example, keeping the member and batch dimensions: ``[K, B, C, H, W] → [K, B, C·H·W]``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(-3) if x.dim() >= 4 else x


def stack(model: nn.Sequential, members: int) -> nn.Sequential:
    """The stacked twin of a Sequential of Flatten / Linear / ReLU layers, with the same parameter names."""
    layers: list[nn.Module] = []
    for i, layer in enumerate(model):
        if isinstance(layer, nn.Linear):
            layers.append(StackedLinear(members, layer.in_features, layer.out_features))
        elif isinstance(layer, nn.Flatten):
            layers.append(StackedFlatten())
        elif isinstance(layer, nn.ReLU):
            layers.append(nn.ReLU())
        else:
            raise ValueError(f"stacking supports Flatten, Linear and ReLU layers; layer {i} is {type(layer).__name__}")
    return nn.Sequential(*layers)

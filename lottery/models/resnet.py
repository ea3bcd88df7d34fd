"""CIFAR ResNet-20/32/56 (He et al. 2016, §4.2; the variant OpenLTH uses): three stages of (depth − 2) / 6
basic blocks at widths 16, 32, 64, a 1×1 conv + BatchNorm shortcut where the shape changes."""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from lottery.models.registry import Shape, register


class Block(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, depth: int, input_shape: Shape, num_classes: int, width: int = 16) -> None:
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"model.depth: {depth} is not valid; a CIFAR ResNet has depth 6n + 2 (20, 32, 56, …)")
        n = (depth - 2) // 6
        self.conv = nn.Conv2d(input_shape[0], width, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(width)
        blocks, c = [], width
        for stage in range(3):
            out = width * 2**stage
            for i in range(n):
                blocks.append(Block(c, out, 2 if stage > 0 and i == 0 else 1))
                c = out
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(torch.relu(self.bn(self.conv(x))))
        return self.fc(x.mean((2, 3)))


for _depth in (20, 32, 56):  # resnet20, resnet32, resnet56
    register(f"resnet{_depth}")(partial(ResNet, _depth))

"""CIFAR-style VGG-11/13/16/19 (as in OpenLTH and Frankle et al. 2020): 3×3 conv + BatchNorm + ReLU blocks,
2×2 max-pools, global average pool, one linear classifier."""

from __future__ import annotations

from functools import partial

from torch import nn

from lottery.models.registry import Shape, register

PLANS: dict[int, list[int | str]] = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512],
}


def vgg(depth: int, input_shape: Shape, num_classes: int, width: float = 1.0) -> nn.Module:
    c = input_shape[0]
    layers: list[nn.Module] = []
    for item in PLANS[depth]:
        if item == "M":
            layers.append(nn.MaxPool2d(2))
            continue
        out = max(1, round(int(item) * width))
        layers += [nn.Conv2d(c, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU()]
        c = out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes)]
    return nn.Sequential(*layers)


for _depth in PLANS:  # vgg11, vgg13, vgg16, vgg19
    register(f"vgg{_depth}")(partial(vgg, _depth))

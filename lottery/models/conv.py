"""Conv-2/4/6 of Frankle & Carbin (2019): VGG-like 3×3 blocks of two convs then a 2×2 max-pool, and
fully connected 256-256-classes."""

from __future__ import annotations

from torch import nn

from lottery.models.registry import Shape, register


def conv_net(
    input_shape: Shape, num_classes: int, widths: list[int], hidden: tuple[int, ...] = (256, 256)
) -> nn.Module:
    c, h, w = input_shape
    layers: list[nn.Module] = []
    for i, width in enumerate(widths):
        layers += [nn.Conv2d(c, width, 3, padding=1), nn.ReLU()]
        c = width
        if i % 2 == 1:
            layers.append(nn.MaxPool2d(2))
            h, w = h // 2, w // 2
    layers.append(nn.Flatten())
    sizes = [c * h * w, *hidden, num_classes]
    for i, (a, b) in enumerate(zip(sizes, sizes[1:], strict=False)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


@register("conv2")
def conv2(input_shape: Shape, num_classes: int) -> nn.Module:
    return conv_net(input_shape, num_classes, [64, 64])


@register("conv4")
def conv4(input_shape: Shape, num_classes: int) -> nn.Module:
    return conv_net(input_shape, num_classes, [64, 64, 128, 128])


@register("conv6")
def conv6(input_shape: Shape, num_classes: int) -> nn.Module:
    return conv_net(input_shape, num_classes, [64, 64, 128, 128, 256, 256])

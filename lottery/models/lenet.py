"""LeNet-300-100 (fully connected) and LeNet-5 (convolutional), as in Frankle & Carbin (2019)."""

from __future__ import annotations

from torch import nn

from lottery.models.registry import Shape, register


def mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Flatten()]
    for i, (a, b) in enumerate(zip(sizes, sizes[1:], strict=False)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


@register("lenet_300_100", "lenet300")
def lenet_300_100(input_shape: Shape, num_classes: int, hidden: tuple[int, ...] = (300, 100)) -> nn.Module:
    c, h, w = input_shape
    return mlp([c * h * w, *hidden, num_classes])


@register("lenet5")
def lenet5(input_shape: Shape, num_classes: int) -> nn.Module:
    c, h, w = input_shape
    # 5×5 convs, the first padded so 28×28 and 32×32 inputs both work (LeCun et al. 1998 used 32×32)
    features = nn.Sequential(
        nn.Conv2d(c, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
    )
    flat = 16 * ((h // 2 - 4) // 2) * ((w // 2 - 4) // 2)
    return nn.Sequential(
        features, nn.Flatten(),
        nn.Linear(flat, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, num_classes),
    )

"""A user's own model, loaded by import path in tests (``tests.custom_model:TinyNet``)."""

from __future__ import annotations

from torch import nn

from lottery.models import register


class TinyNet(nn.Sequential):
    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, hidden: int = 16) -> None:
        c, h, w = input_shape
        super().__init__(nn.Flatten(), nn.Linear(c * h * w, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))


def not_a_module(input_shape: tuple[int, int, int], num_classes: int) -> int:
    return 3


@register("tiny_builder")
def tiny_builder(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    return TinyNet(input_shape, num_classes, hidden=5)


@register("broken_builder")
def broken_builder(input_shape: tuple[int, int, int], num_classes: int) -> int:
    return 3

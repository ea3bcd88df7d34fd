"""Stacked members: each member is exactly the network its own start gives alone, and trains like it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lottery.init import InitSpec, initial_value, initialize
from lottery.models import build
from lottery.models.stacked import optimizer_params, stack

SPECS = (InitSpec(seed=42), InitSpec(seed=43, scheme="kaiming_uniform", scale=0.5),
         InitSpec(seed=44, scheme="xavier_uniform", scale=2.0, source="sobol"))


def solo(spec: InitSpec) -> nn.Module:
    return initialize(build("lenet_300_100", (1, 28, 28), 10), spec)


def test_member_weights_and_outputs_are_those_of_the_network_alone() -> None:
    stacked = initialize(stack(build("lenet_300_100", (1, 28, 28), 10), 3), SPECS)
    x = torch.randn(3, 7, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    for m, spec in enumerate(SPECS):
        alone = solo(spec)
        for name, p in alone.named_parameters():
            assert torch.equal(dict(stacked.named_parameters())[name][m], p), (m, name)
            assert torch.equal(initial_value(stacked, name)[m], p)  # regenerated per member from its own spec
        assert torch.equal(stacked(x)[m], alone(x[m]))
    shared = stacked(x[0])  # one batch for every member
    assert shared.shape == (3, 7, 10) and torch.equal(shared[1], solo(SPECS[1])(x[0]))


def test_one_adam_over_stacked_members_equals_separate_adams() -> None:
    g = torch.Generator().manual_seed(1)
    data = [(torch.randn(3, 20, 1, 28, 28, generator=g), torch.randint(0, 10, (3, 20), generator=g)) for _ in range(5)]
    stacked = initialize(stack(build("lenet_300_100", (1, 28, 28), 10), 3), SPECS)
    opt = torch.optim.Adam(optimizer_params(stacked), lr=1e-3, fused=True)
    for xb, yb in data:
        loss = nn.functional.cross_entropy(stacked(xb).flatten(0, 1), yb.flatten(), reduction="none").view(3, 20)
        loss = loss.mean(1).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    for m, spec in enumerate(SPECS):
        alone = solo(spec)
        opt = torch.optim.Adam(alone.parameters(), lr=1e-3, fused=True)
        for xb, yb in data:
            loss = nn.functional.cross_entropy(alone(xb[m]), yb[m])
            opt.zero_grad()
            loss.backward()
            opt.step()
        for name, p in alone.named_parameters():
            # bit for bit: the same products per member (see _StackedAffine), elementwise Adam
            assert torch.equal(dict(stacked.named_parameters())[name][m], p), (m, name)


def test_gradients_land_in_the_weights_layout() -> None:
    stacked = initialize(stack(build("lenet_300_100", (1, 28, 28), 10), 2), SPECS[:2])
    stacked(torch.randn(2, 5, 1, 28, 28)).sum().backward()
    for name, p in stacked.named_parameters():  # no transposed grads for AccumulateGrad / Adam to copy back
        assert p.grad.stride() == p.stride(), name


def test_stacking_names_what_it_cannot_stack() -> None:
    with pytest.raises(ValueError, match="stacking supports Flatten, Linear and ReLU layers; layer 0 is Sequential"):
        stack(build("lenet5", (1, 28, 28), 10), 2)

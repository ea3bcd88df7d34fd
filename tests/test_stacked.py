"""Stacked members: each member is exactly the network its own start gives alone, and trains like it."""

from __future__ import annotations

from pathlib import Path

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


def loss_of(net: nn.Module, xb: torch.Tensor, yb: torch.Tensor, member: int | None) -> torch.Tensor:
    if member is not None:
        return nn.functional.cross_entropy(net(xb[member]), yb[member])
    k, b = yb.shape  # stacked: the sum of the members' mean losses
    return nn.functional.cross_entropy(net(xb).flatten(0, 1), yb.flatten(), reduction="none").view(k, b).mean(1).sum()


def train_steps(net: nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]], member: int | None) -> None:
    opt = torch.optim.Adam(optimizer_params(net), lr=1e-3, fused=True)
    for xb, yb in batches:
        opt.zero_grad()
        loss_of(net, xb, yb, member).backward()
        opt.step()


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
    train_steps(stacked, data, None)
    for m, spec in enumerate(SPECS):
        alone = solo(spec)
        train_steps(alone, data, m)
        for name, p in alone.named_parameters():
            # bit for bit: the same products per member (see _StackedAffine), elementwise Adam
            assert torch.equal(dict(stacked.named_parameters())[name][m], p), (m, name)


def test_batched_members_take_one_product_per_layer_and_match_within_float_tolerance() -> None:
    g = torch.Generator().manual_seed(2)
    data = [(torch.randn(3, 20, 1, 28, 28, generator=g), torch.randint(0, 10, (3, 20), generator=g)) for _ in range(5)]
    batched = initialize(stack(build("lenet_300_100", (1, 28, 28), 10), 3, exact=False), SPECS)
    x = data[0][0].flatten(2)
    by_hand = x
    for i in (1, 3, 5):
        w, b = batched[i].weight, batched[i].bias
        by_hand = torch.baddbmm(b.unsqueeze(1), by_hand, w.transpose(1, 2))
        by_hand = by_hand.relu() if i < 5 else by_hand
    assert torch.equal(batched(data[0][0]), by_hand)  # the batched kernels, not K products
    # the gradients within float tolerance, as for the convolutions below: after Adam steps the weights may not
    # be (Adam's normalised step turns a rounding-level difference in a near-zero gradient into ±lr, so
    # comparing weights after training failed or passed with the thread count a previous test left behind)
    loss_of(batched, *data[0], None).backward()
    for m, spec in enumerate(SPECS):
        alone = solo(spec)
        loss_of(alone, *data[0], m).backward()
        for name, p in alone.named_parameters():
            mine = dict(batched.named_parameters())[name]
            assert (mine.grad[m] - p.grad).abs().max() <= 1e-5 * p.grad.abs().max(), (m, name)


def test_gradients_land_in_the_weights_layout() -> None:
    stacked = initialize(stack(build("lenet_300_100", (1, 28, 28), 10), 2), SPECS[:2])
    stacked(torch.randn(2, 5, 1, 28, 28)).sum().backward()
    for name, p in stacked.named_parameters():  # no transposed grads for AccumulateGrad / Adam to copy back
        assert p.grad.stride() == p.stride(), name


@pytest.mark.parametrize(("model", "shape", "exact"), [
    ("lenet5", (1, 28, 28), True), ("conv2", (3, 32, 32), True), ("lenet5", (1, 28, 28), False),
    ("conv2", (3, 32, 32), False),
])
def test_convolutional_members_train_like_the_networks_alone(model: str, shape: tuple, exact: bool) -> None:
    g = torch.Generator().manual_seed(3)
    batches = [(torch.randn(3, 8, *shape, generator=g), torch.randint(0, 10, (3, 8), generator=g)) for _ in range(3)]
    stacked = initialize(stack(build(model, shape, 10), 3, exact), SPECS)
    shared = batches[0][0][1]
    before = stacked(shared)  # one batch shared by every member (evaluation)
    # exact: bit for bit after Adam steps; batched: the gradients within float tolerance (Adam's
    # normalised steps turn a rounding-level difference in a near-zero gradient into ±lr)
    if exact:
        train_steps(stacked, batches, None)
    else:
        loss_of(stacked, *batches[0], None).backward()
    for m, spec in enumerate(SPECS):
        alone = initialize(build(model, shape, 10), spec)
        if exact:
            assert torch.equal(before[m], alone(shared)), m
        else:
            assert torch.allclose(before[m], alone(shared), rtol=1e-4, atol=1e-6), m
        if exact:
            train_steps(alone, batches, m)
        else:
            loss_of(alone, *batches[0], m).backward()
        for name, p in alone.named_parameters():
            mine = dict(stacked.named_parameters())[name]
            if exact:
                assert torch.equal(mine[m], p), (m, name)
            else:
                assert (mine.grad[m] - p.grad).abs().max() <= 1e-5 * p.grad.abs().max(), (m, name)


def test_batchnorm_members_keep_their_own_statistics() -> None:
    g = torch.Generator().manual_seed(4)
    batches = [(torch.randn(2, 6, 3, 32, 32, generator=g), torch.randint(0, 10, (2, 6), generator=g)) for _ in range(2)]
    for exact in (True, False):  # exact: bit for bit; batched: within float tolerance
        same = torch.equal if exact else lambda a, b: torch.allclose(a, b, rtol=1e-3, atol=1e-4)
        stacked = initialize(stack(build("vgg11", (3, 32, 32), 10, width=0.125), 2, exact), SPECS[:2])
        train_steps(stacked, batches[:1] if not exact else batches, None)
        params, buffers = dict(stacked.named_parameters()), dict(stacked.named_buffers())
        for m, spec in enumerate(SPECS[:2]):
            alone = initialize(build("vgg11", (3, 32, 32), 10, width=0.125), spec)
            train_steps(alone, batches[:1] if not exact else batches, m)
            for name, buf in alone.named_buffers():  # running statistics, updated by each member's own batches
                assert same(buffers[name] if buf.dim() == 0 else buffers[name][m], buf), (exact, m, name)
            if exact:
                assert all(torch.equal(params[n][m], p) for n, p in alone.named_parameters())
            stacked.eval(), alone.eval()
            x = batches[0][0][m]
            assert same(stacked(x)[m], alone(x)), (exact, m)  # evaluation uses each member's running statistics
            stacked.train()


def test_stacking_names_what_it_cannot_stack() -> None:
    with pytest.raises(ValueError, match="stacking supports Sequential models; this is a ResNet"):
        stack(build("resnet20", (3, 32, 32), 10), 2)
    with pytest.raises(ValueError, match="layer 1 is Dropout"):
        stack(nn.Sequential(nn.Linear(4, 4), nn.Dropout()), 2)


@pytest.mark.parametrize("model", ["lenet_300_100", "lenet5"])
def test_learned_starts_stack_member_by_member(model: str) -> None:
    """The committed generators: a stacked member's w0 is the network's alone (vae keys layers by name)."""

    gens = Path(__file__).resolve().parents[1] / "generators"
    vae = next(p for p in sorted(gens.glob("vae-*.pt")) if torch.load(p, weights_only=True)["meta"]["model"] == model)
    specs = (InitSpec(seed=42, source="vae", generator=str(vae)),
             InitSpec(seed=43, source="ghn", generator=str(next(gens.glob("ghn-*.pt")))), InitSpec(seed=44))
    stacked = initialize(stack(build(model, (1, 28, 28), 10), 3), specs)
    for m, spec in enumerate(specs):
        alone = initialize(build(model, (1, 28, 28), 10), spec)
        for name, p in alone.named_parameters():
            assert torch.equal(dict(stacked.named_parameters())[name][m], p), (m, name)
            assert torch.equal(initial_value(stacked, name)[m], p)

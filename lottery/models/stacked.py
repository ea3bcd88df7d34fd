"""K independent networks of one Sequential architecture as one batched computation.

Small networks leave the hardware idle; stacking K of them along a leading member dimension turns K small
matmuls into one ``baddbmm`` (K convolutions into one grouped one, ``stacked_conv``) and K optimizers into
one (Adam is elementwise, so one Adam over stacked tensors equals K separate Adams). Member m's weight
``[m]`` has the unstacked layer's layout and the parameter names match the unstacked network's, so
``lottery.init`` gives member m exactly the w0 its own spec gives the plain network (see ``mark_stacked``).
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from lottery.init.apply import mark_stacked, members_of
from lottery.models.stacked_conv import ChannelsToMembers, StackedBatchNorm2d, StackedConv2d, exact_on_cpu


def _batched(x: torch.Tensor, exact: bool) -> bool:
    """Whether to use one batched product instead of K. On a GPU always (one kernel launch instead of K;
    members then match their cells alone within float tolerance, as GPU GEMMs do across shapes), and on CPU
    when the layer is not ``exact`` (≈ 15 % faster for K = 11 LeNets, within float tolerance). Exact on CPU:
    for one batch shared by every member (a stride-0 view: the input layer of members with one batch order,
    every evaluation) of at least 32 rows, where one ``baddbmm`` reads the batch once for all members and
    agrees bit for bit with the K products (checked from 20 to 1,000 rows; the pack tests check members
    against their cells trained alone)."""
    return not exact_on_cpu(x, exact) or (x.stride(0) == 0 and x.shape[1] >= 32)


class _StackedAffine(torch.autograd.Function):
    """``x @ W^T + b`` per member, computed with exactly the products ``nn.Linear`` computes alone.

    MKL picks its kernels by shape: a batched product and K single ones agree bit for bit for some shapes
    and not others (LeNet's 100→10 weight gradient, batches under 16), so on CPU each member gets its own
    ``addmm``/``mm`` calls, the ones autograd makes for one ``nn.Linear`` (except where ``_batched``): a
    stacked member then trains exactly like the same start trained alone, at the cost of one ``bmm``.
    The weight gradient lands in the weight's own layout: autograd's rule for ``baddbmm`` would build
    a transposed one that AccumulateGrad copies back (≈ 40 % of a K = 11 LeNet step).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, exact: bool) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x, weight)
        ctx.batched = _batched(x, exact)
        if ctx.batched:
            return torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))
        out = x.new_empty(weight.shape[0], x.shape[-2], weight.shape[1])
        for k in range(weight.shape[0]):
            torch.addmm(bias[k], x[k], weight[k].t(), out=out[k])
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        x, weight = ctx.saved_tensors
        members = range(weight.shape[0])
        batched, grad_x, grad_w, grad_b = ctx.batched, None, None, None
        if ctx.needs_input_grad[0] and batched:
            grad_x = torch.bmm(grad, weight)
        elif ctx.needs_input_grad[0]:
            grad_x = x.new_empty(x.shape)
            for k in members:
                torch.mm(grad[k], weight[k], out=grad_x[k])
        if ctx.needs_input_grad[1]:
            if batched:
                grad_w = torch.bmm(grad.transpose(1, 2), x)
            else:
                grad_w = torch.empty_like(weight)
                for k in members:
                    torch.mm(grad[k].t(), x[k], out=grad_w[k])
        if ctx.needs_input_grad[2]:
            grad_b = grad.sum(1) if batched else torch.stack([grad[k].sum(0) for k in members])
        return grad_x, grad_w, grad_b, None


class StackedLinear(nn.Module):
    """``members`` Linear layers: input ``[K, B, in]`` (or ``[B, in]``, shared), output ``[K, B, out]``.
    ``exact``: on CPU, each member computed with the products ``nn.Linear`` computes alone (bit for bit);
    otherwise one batched product (see ``_batched``)."""

    def __init__(self, members: int, in_features: int, out_features: int, exact: bool = True) -> None:
        super().__init__()
        self.members, self.in_features, self.out_features = members, in_features, out_features
        self.exact = exact
        self.weight = nn.Parameter(torch.empty(members, out_features, in_features))
        self.bias = nn.Parameter(torch.empty(members, out_features))
        mark_stacked(self.weight, members)
        mark_stacked(self.bias, members)
        bound = 1 / math.sqrt(in_features)  # nn.Linear's default, until lottery.init sets the real start
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:  # one batch shared by every member: a stride-0 view, no copy
            x = x.expand(self.members, *x.shape)
        return _StackedAffine.apply(x, self.weight, self.bias, self.exact)

    def extra_repr(self) -> str:
        return (f"members={self.members}, in_features={self.in_features}, out_features={self.out_features}, "
                f"exact={self.exact}")


class StackedFlatten(nn.Module):
    """Flatten each example, keeping the member and batch dimensions: ``[K, B, C, H, W] → [K, B, C·H·W]``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(-3) if x.dim() >= 4 else x


POINTWISE = (nn.ReLU, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d)  # act on every member's maps alike


def stack(model: nn.Sequential, members: int, exact: bool = True) -> nn.Sequential:
    """The stacked twin of a Sequential (nested ones too) of Linear, Conv2d, BatchNorm2d, ReLU, pooling and
    Flatten layers, with the same parameter names; ``exact=False`` trades CPU bit-identity with the networks
    alone for one batched product (or grouped convolution) per layer."""
    return _stack(model, members, exact, [False])


def _stack(model: nn.Sequential, members: int, exact: bool, convolving: list[bool]) -> nn.Sequential:
    if not isinstance(model, nn.Sequential):
        raise ValueError(f"stacking supports Sequential models; this is a {type(model).__name__}")
    layers: list[nn.Module] = []
    for i, layer in enumerate(model):
        if isinstance(layer, nn.Sequential):
            layers.append(_stack(layer, members, exact, convolving))
        elif isinstance(layer, nn.Linear):
            layers.append(StackedLinear(members, layer.in_features, layer.out_features, exact))
        elif isinstance(layer, nn.Conv2d):
            layers.append(StackedConv2d(members, layer, exact))
            convolving[0] = True
        elif isinstance(layer, nn.BatchNorm2d) and convolving[0]:
            layers.append(StackedBatchNorm2d(members, layer, exact))
        elif isinstance(layer, nn.Flatten):
            layers.append(ChannelsToMembers(members) if convolving[0] else StackedFlatten())
            convolving[0] = False
        elif isinstance(layer, POINTWISE) and (convolving[0] or isinstance(layer, nn.ReLU)):
            layers.append(copy.deepcopy(layer))
        else:
            raise ValueError(f"stacking supports Sequentials of Linear, Conv2d, BatchNorm2d, ReLU, pooling and "
                             f"Flatten layers; layer {i} is {type(layer).__name__}")
    return nn.Sequential(*layers)


def optimizer_params(model: nn.Module) -> list[torch.Tensor]:
    """The tensors to hand the optimizer: each stacked parameter as its K member slices.

    Fused Adam runs its vector loop over each tensor and a scalar loop over the tail; given one [K, …]
    tensor, a member's tail elements would take the vector path and can round differently (FMA) from the
    network trained alone. Handed K slices, each member is stepped exactly as alone. The slices are views
    of the parameter's storage; after backward, a hook hands member k the k-th slice of the gradient.
    """
    out: list[torch.Tensor] = []
    for p in model.parameters():
        k = members_of(p)
        if not k:
            out.append(p)
            continue
        views = [p.detach()[m] for m in range(k)]

        def share(param: torch.Tensor, views: list[torch.Tensor] = views) -> None:
            for m, v in enumerate(views):
                v.grad = param.grad[m]
            param.grad = None  # the next backward starts from zero, as the slices' zero_grad expects

        old = getattr(p, "_lottery_share", None)
        if old is not None:  # asked again (a new fit, a reconfigured optimizer): the newest slices get grads
            old.remove()
        p._lottery_share = p.register_post_accumulate_grad_hook(share)
        out += views
    return out

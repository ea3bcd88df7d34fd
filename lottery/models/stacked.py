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

from lottery.init.apply import mark_stacked, members_of


def _batched(x: torch.Tensor) -> bool:
    """Whether to use one batched product instead of K. On a GPU always (one kernel launch instead of K;
    members then match their cells alone within float tolerance, as GPU GEMMs do across shapes). On CPU
    for one batch shared by every member (a stride-0 view: the input layer of members with one batch order,
    every evaluation) of at least 32 rows: one ``baddbmm`` reads the batch once for all members and agrees
    bit for bit with the K products (checked from 20 to 1,000 rows; the pack tests check members against
    their cells trained alone)."""
    return x.device.type != "cpu" or (x.stride(0) == 0 and x.shape[1] >= 32)


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
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x, weight)
        if _batched(x):
            return torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))
        out = x.new_empty(weight.shape[0], x.shape[-2], weight.shape[1])
        for k in range(weight.shape[0]):
            torch.addmm(bias[k], x[k], weight[k].t(), out=out[k])
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        x, weight = ctx.saved_tensors
        members = range(weight.shape[0])
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0] and _batched(x):
            grad_x = torch.bmm(grad, weight)
        elif ctx.needs_input_grad[0]:
            grad_x = x.new_empty(x.shape)
            for k in members:
                torch.mm(grad[k], weight[k], out=grad_x[k])
        if ctx.needs_input_grad[1]:
            if _batched(x):
                grad_w = torch.bmm(grad.transpose(1, 2), x)
            else:
                grad_w = torch.empty_like(weight)
                for k in members:
                    torch.mm(grad[k].t(), x[k], out=grad_w[k])
        if ctx.needs_input_grad[2]:
            grad_b = grad.sum(1) if _batched(x) else torch.stack([grad[k].sum(0) for k in members])
        return grad_x, grad_w, grad_b


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
        if x.dim() == 2:  # one batch shared by every member: a stride-0 view, no copy
            x = x.expand(self.members, *x.shape)
        return _StackedAffine.apply(x, self.weight, self.bias)

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

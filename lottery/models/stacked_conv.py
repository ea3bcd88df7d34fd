"""Convolutional members of a stacked network: K Conv2d / BatchNorm2d layers as one grouped computation.

Inside the convolutional part the K members' feature maps travel channel-stacked, ``[B, K·C, H, W]`` with
member k's channels at ``k·C … (k+1)·C``, so ReLU, max- and average-pooling act on all members unchanged,
a convolution is one grouped ``conv2d`` (``groups=K``) and a BatchNorm over K·C channels keeps each
member's statistics apart (they are per channel). Parameters keep a leading member dimension and the
unstacked names, so ``lottery.init`` and the pruning callback see K networks. ``exact`` on CPU runs each
member's own ``conv2d`` / ``batch_norm`` on its contiguous slice, as the network alone does.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from lottery.init.apply import mark_stacked


def _split(x: torch.Tensor, members: int, channels: int) -> list[torch.Tensor]:
    """Each member's input, contiguous as the network alone would get it."""
    if x.dim() == 5:  # [K, B, C, H, W]: one batch per member
        return list(x.unbind(0))
    if x.shape[1] == channels:  # one batch shared by every member
        return [x] * members
    return [part.contiguous() for part in x.split(channels, 1)]


class _Cat(torch.autograd.Function):
    """``torch.cat`` along channels whose backward hands each member a contiguous gradient, as the network
    alone gets it: CPU kernels (BatchNorm's backward among them) reduce a strided gradient in another order."""

    @staticmethod
    def forward(ctx, *parts: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.sizes = [p.shape[1] for p in parts]
        return torch.cat(parts, 1)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, ...]:  # type: ignore[override]
        return tuple(g.contiguous() for g in grad.split(ctx.sizes, 1))


def exact_on_cpu(x: torch.Tensor, exact: bool) -> bool:
    """Whether a stacked layer computes each member with the network-alone kernels: GPUs always batch."""
    return exact and x.device.type == "cpu"


class StackedConv2d(nn.Module):
    """``members`` copies of ``conv``'s shape. Input: channel-stacked ``[B, K·C, H, W]``, one batch per member
    ``[K, B, C, H, W]`` or one shared ``[B, C, H, W]``; output channel-stacked ``[B, K·C', H', W']``."""

    convolution = True  # a convolution to the pruning rates (prune.conv_rate), without importing this module

    def __init__(self, members: int, conv: nn.Conv2d, exact: bool = True) -> None:
        super().__init__()
        if conv.groups != 1 or conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            raise ValueError("stacking supports Conv2d with groups=1, zero padding given as numbers")
        self.members, self.exact, self.in_channels = members, exact, conv.in_channels
        self.stride, self.padding, self.dilation = conv.stride, conv.padding, conv.dilation
        self.weight = nn.Parameter(conv.weight.detach().expand(members, *conv.weight.shape).clone())
        mark_stacked(self.weight, members)
        if conv.bias is None:
            self.register_parameter("bias", None)
        else:
            self.bias = nn.Parameter(conv.bias.detach().expand(members, -1).clone())
            mark_stacked(self.bias, members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        args = (self.stride, self.padding, self.dilation)
        biases = [None] * self.members if self.bias is None else self.bias.unbind(0)
        if exact_on_cpu(x, self.exact):  # unbind/split: one stack/cat in backward, not K full-size grads
            xs = _split(x, self.members, self.in_channels)
            parts = zip(xs, self.weight.unbind(0), biases, strict=True)
            return _Cat.apply(*[F.conv2d(xm, w, b, *args) for xm, w, b in parts])
        if x.dim() == 5:
            x = x.transpose(0, 1).flatten(1, 2)
        shared = x.shape[1] == self.in_channels  # then one plain conv with K·C' output channels
        bias = None if self.bias is None else self.bias.flatten()
        return F.conv2d(x, self.weight.flatten(0, 1), bias, *args, groups=1 if shared else self.members)

    def extra_repr(self) -> str:
        return f"members={self.members}, weight={tuple(self.weight.shape[1:])}, exact={self.exact}"


class StackedBatchNorm2d(nn.Module):
    """``members`` BatchNorm2d layers over channel-stacked maps, each with its own affine parameters and
    running statistics (``[K, C]`` buffers, saved in checkpoints like the unstacked ones)."""

    def __init__(self, members: int, bn: nn.BatchNorm2d, exact: bool = True) -> None:
        super().__init__()
        if not (bn.affine and bn.track_running_stats):
            raise ValueError("stacking supports BatchNorm2d with affine=True and track_running_stats=True")
        self.members, self.exact, self.channels = members, exact, bn.num_features
        self.eps, self.momentum = bn.eps, bn.momentum
        self.weight = mark_stacked(nn.Parameter(torch.ones(members, bn.num_features)), members)
        self.bias = mark_stacked(nn.Parameter(torch.zeros(members, bn.num_features)), members)
        self.register_buffer("running_mean", torch.zeros(members, bn.num_features))
        self.register_buffer("running_var", torch.ones(members, bn.num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training:  # as nn.BatchNorm2d: momentum None is a cumulative average
            self.num_batches_tracked.add_(1)
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked)
        stats = (self.training, factor, self.eps)
        if exact_on_cpu(x, self.exact):
            parts = zip(_split(x, self.members, self.channels), self.running_mean.unbind(0),
                        self.running_var.unbind(0), self.weight.unbind(0), self.bias.unbind(0), strict=True)
            return _Cat.apply(*[F.batch_norm(xm, mean, var, w, b, *stats) for xm, mean, var, w, b in parts])
        return F.batch_norm(x, self.running_mean.view(-1), self.running_var.view(-1), self.weight.flatten(),
                            self.bias.flatten(), *stats)

    def extra_repr(self) -> str:
        return f"members={self.members}, num_features={self.channels}, exact={self.exact}"


class ChannelsToMembers(nn.Module):
    """Where the convolutional part ends: channel-stacked ``[B, K·C, H, W]`` → ``[K, B, C·H·W]``, each
    member's maps flattened as ``nn.Flatten`` flattens them alone."""

    def __init__(self, members: int) -> None:
        super().__init__()
        self.members = members

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(1, (self.members, -1)).transpose(0, 1).flatten(2)

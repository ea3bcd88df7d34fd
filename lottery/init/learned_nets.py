"""The two learned-start networks: a VAE over one layer's weight slices, and a hypernetwork that generates any
Linear/Conv layer from the architecture (see ``lottery.init.learned`` for how their files are stored and decoded)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

Shape = tuple[int, ...]


def mlp(sizes: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:], strict=False)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class SliceVAE(nn.Module):
    """A Gaussian VAE over weight slices of one layer, in units of that layer's weight std."""

    def __init__(self, size: int, latent: int = 4, hidden: int = 64) -> None:
        super().__init__()
        self.size, self.latent, self.hidden = size, latent, hidden
        self.enc = mlp([size, hidden, hidden, 2 * latent])
        self.dec = mlp([latent, hidden, hidden, size])
        self.log_sigma = nn.Parameter(torch.full((size,), -1.0))

    def sample(self, z: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        return self.dec(z) + self.log_sigma.exp() * eps

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """The negative ELBO per slice (Gaussian likelihood with a learned σ per slice position)."""
        mu, logvar = self.enc(x).chunk(2, dim=-1)
        z = mu + (0.5 * logvar).exp() * torch.randn_like(mu)
        nll = 0.5 * ((x - self.dec(z)) / self.log_sigma.exp()).pow(2).sum(-1) + self.log_sigma.sum()
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(-1)
        return (nll + kl).mean()


FEATURES = 9  # per layer: log fans, log out/in, kernel size, depth, first, last, conv
POSITIONS = 10  # per row/column: fraction, 3 sine/cosine pairs, and its place on a square grid if any


def descriptor(arch: Sequence[Shape], index: int) -> list[float]:
    shape = arch[index]
    kk = math.prod(shape[2:])
    depth = index / max(len(arch) - 1, 1)
    return [math.log(shape[1] * kk) / 10, math.log(shape[0] * kk) / 10, math.log(shape[0]) / 10,
            math.log(shape[1]) / 10, kk / 25, depth, float(index == 0), float(index == len(arch) - 1),
            float(len(shape) > 2)]


def context(arch: Sequence[Shape], index: int) -> torch.Tensor:
    """The layer's descriptor beside its neighbours' (zeros past either end)."""
    near = [descriptor(arch, j) if 0 <= j < len(arch) else [0.0] * FEATURES for j in (index - 1, index, index + 1)]
    return torch.tensor([v for d in near for v in d], dtype=torch.float64)


def positions(n: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Where each unit sits: along the layer, and (for a square count, e.g. 784 pixels) on the image grid,
    so the first layer can learn spatial templates."""
    i = torch.arange(n, dtype=dtype)
    t = i / max(n, 1)
    waves = [f(math.pi * 2**j * t) for j in range(3) for f in (torch.sin, torch.cos)]
    side = math.isqrt(n)
    if side * side == n and side > 1:
        grid = [2 * torch.div(i, side, rounding_mode="floor") / (side - 1) - 1, 2 * (i % side) / (side - 1) - 1,
                torch.ones_like(t)]
    else:
        grid = [torch.zeros_like(t)] * 3
    return torch.stack([t, *waves, *grid], dim=1)


def inputs(arch: Sequence[Shape], index: int, codes: Callable[[int], torch.Tensor], noise: int,
           dtype: torch.dtype) -> list[torch.Tensor]:
    """Each input unit's code, place and spatial position. An input is an output unit of the previous layer, so
    it carries that unit's code and place (what makes a generated network coherent across layers); a flattened
    feature map repeats each channel's over its spatial positions. The first layer's inputs (pixels) have
    places only."""
    in_f = arch[index][1]
    prev = arch[index - 1][0] if index > 0 else 0
    if prev == 0 or in_f % prev:
        zeros = torch.zeros(in_f, POSITIONS, dtype=dtype)
        return [torch.zeros(in_f, noise, dtype=dtype), positions(in_f, dtype), zeros]
    m = in_f // prev
    return [codes(index - 1).repeat_interleave(m, 0), positions(prev, dtype).repeat_interleave(m, 0),
            positions(m, dtype).repeat(prev, 1)]


class LayerHypernet(nn.Module):
    """Generates one Linear/Conv weight of any shape from the architecture and per-unit noise."""

    def __init__(self, hidden: int = 32, noise: int = 8, rank: int = 16) -> None:
        super().__init__()
        self.hidden, self.noise, self.rank = hidden, noise, rank
        self.ctx = mlp([3 * FEATURES, hidden, hidden])
        self.rows = mlp([hidden + noise + POSITIONS, 64, rank])
        self.cols = mlp([hidden + noise + 2 * POSITIONS, 64, rank])
        self.kern = mlp([hidden + 2, 32, rank])
        self.gains = mlp([hidden, 16, 2])
        with torch.no_grad():  # start with 73 % of the variance structured: noise-dominated starts collapse
            self.gains[-1].bias.copy_(torch.tensor([0.0, 1.0]))

    def forward(self, arch: Sequence[Shape], index: int, codes: Callable[[int], torch.Tensor],
                eps: torch.Tensor) -> torch.Tensor:
        """``codes(l)``: the noise code of each output unit of layer l (the same whenever l is asked for)."""
        shape = arch[index]
        out_f, in_f, kernel = shape[0], shape[1], shape[2:]
        dtype = eps.dtype
        h = self.ctx(context(arch, index).to(dtype))
        a = self.rows(torch.cat([h.expand(out_f, -1), codes(index), positions(out_f, dtype)], 1))
        b = self.cols(torch.cat([h.expand(in_f, -1), *inputs(arch, index, codes, self.noise, dtype)], 1))
        grid = torch.cartesian_prod(*[torch.linspace(-1, 1, k, dtype=dtype) for k in kernel]) if kernel else \
            torch.zeros(1, 2, dtype=dtype)
        grid = grid.reshape(-1, len(kernel)) if kernel else grid
        grid = torch.nn.functional.pad(grid, (0, 2 - grid.shape[1]))
        k = self.kern(torch.cat([h.expand(len(grid), -1), grid], 1))  # (kk, rank)
        if kernel:
            low = torch.einsum("or,ir,kr->oik", a, b, k).reshape(shape)
        else:
            low = a @ (b * k[0]).t()
        # He scale × a learned factor in [1/e, e], split between the structured and the noise part: neither can
        # collapse to zero, so a generated network always passes signal
        scale, mix = self.gains(h)
        # each unit's structured weights sum to zero over its inputs: a constant input (an image's background)
        # cannot push every unit below zero, which is how an untrained hypernetwork otherwise kills the ReLUs
        low = low - low.flatten(1).mean(1).view(-1, *[1] * (low.dim() - 1))
        # then the operator norm of a Gaussian matrix of this shape: an entry-normalised rank-r matrix would
        # amplify its few directions √(mn/r) times and blow the logits up
        m, n = out_f, in_f * math.prod(kernel)
        low = low / low.pow(2).mean().add(1e-12).sqrt() * (math.sqrt(m) + math.sqrt(n)) / math.sqrt(m * n / self.rank)
        w = torch.sigmoid(mix).sqrt() * low + torch.sigmoid(-mix).sqrt() * eps
        return w * torch.tanh(scale).exp() * math.sqrt(2.0 / (in_f * math.prod(kernel)))

"""Initialisation schemes. Adding one is one function plus one ``@scheme`` line.

A scheme receives ``draw(transform)`` (the tensor's values under a transform, from the tensor's source),
the shape, the fans (computed as ``torch.nn.init`` does) and the scale, and returns the tensor.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from lottery.generators import STANDARD_NORMAL, Transform

# The std of a unit normal truncated to ±2: dividing by it makes the truncated draw have the target std.
TRUNC_STD = 0.87962566103423978
RELU_GAIN = math.sqrt(2.0)


@dataclass(frozen=True)
class Fans:
    fan_in: int
    fan_out: int

    @staticmethod
    def of(shape: tuple[int, ...]) -> Fans:
        """Exactly ``torch.nn.init._calculate_fan_in_and_fan_out``."""
        if len(shape) < 2:
            raise ValueError(f"fans need a tensor of at least 2 dimensions, got shape {tuple(shape)}")
        receptive = math.prod(shape[2:])
        return Fans(shape[1] * receptive, shape[0] * receptive)


Draw = Callable[[Transform], torch.Tensor]
SchemeFn = Callable[[Draw, tuple, Fans, float], torch.Tensor]
SCHEMES: dict[str, SchemeFn] = {}
# The formula each distribution scheme targets: ("normal" | "uniform", std or bound) for tests and inspect.
TARGETS: dict[str, Callable[[Fans, float], tuple[str, float]]] = {}


def scheme(name: str, target: Callable[[Fans, float], tuple[str, float]] | None = None):
    def register(fn: SchemeFn) -> SchemeFn:
        SCHEMES[name] = fn
        if target is not None:
            TARGETS[name] = target
        return fn

    return register


def distribution(name: str, kind: str, width: Callable[[Fans], float]) -> None:
    """Register a normal/uniform/truncated-normal scheme whose std or bound is ``scale · width(fans)``."""

    def target(fans: Fans, scale: float) -> tuple[str, float]:
        return ("uniform" if kind == "uniform" else "normal"), scale * width(fans)

    def fn(draw: Draw, shape: tuple, fans: Fans, scale: float) -> torch.Tensor:
        w = scale * width(fans)
        if kind == "uniform":
            return draw(Transform.uniform(-w, w))
        if kind == "normal":
            return draw(Transform("normal", scale=w))
        return draw(Transform("truncated_normal", scale=w / TRUNC_STD))

    scheme(name, target)(fn)


for family, width in {
    "xavier": lambda f: math.sqrt(2.0 / (f.fan_in + f.fan_out)),
    "kaiming": lambda f: RELU_GAIN / math.sqrt(f.fan_in),
    "lecun": lambda f: 1.0 / math.sqrt(f.fan_in),
}.items():
    distribution(f"{family}_normal", "normal", width)
    distribution(f"{family}_truncated_normal", "truncated_normal", width)
    distribution(f"{family}_uniform", "uniform", lambda f, w=width: math.sqrt(3.0) * w(f))


@scheme("orthogonal")
def orthogonal(draw: Draw, shape: tuple, fans: Fans, scale: float) -> torch.Tensor:
    """QR of a generated Gaussian, columns sign-fixed by sign(diag R) (as torch.nn.init.orthogonal_).

    The QR runs in float64 on CPU so the result does not depend on the device's LAPACK.
    """
    rows = shape[0]
    cols = math.prod(shape) // rows
    g = draw(STANDARD_NORMAL).reshape(rows, cols).to("cpu", torch.float64)
    if rows < cols:
        g = g.t()
    q, r = torch.linalg.qr(g)
    q = q * torch.sign(torch.diagonal(r)).unsqueeze(0)
    if rows < cols:
        q = q.t()
    return (q * scale).reshape(shape)


def hadamard(n: int) -> torch.Tensor:
    h = torch.ones(1, 1, dtype=torch.float64)
    while h.shape[0] < n:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    return h


@scheme("zero")
def zero(draw: Draw, shape: tuple, fans: Fans, scale: float) -> torch.Tensor:
    """ZerO (Zhao et al. 2022): partial identity, or a scaled Hadamard block when the layer widens.

    Conv kernels carry the matrix at the spatial centre and zeros elsewhere. Fully deterministic.
    """
    out_f, in_f = shape[0], shape[1]
    if out_f <= in_f:
        m = torch.eye(out_f, in_f, dtype=torch.float64)
    else:
        k = math.ceil(math.log2(out_f))
        m = hadamard(2**k)[:out_f, :in_f] * 2.0 ** (-(k - 1) / 2)
    w = torch.zeros(shape, dtype=torch.float64)
    centre = tuple(s // 2 for s in shape[2:])
    w[(slice(None), slice(None), *centre)] = m
    return w * scale

"""The map from a uniform u in (0, 1) to an initial value, shared by every source."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from lottery.generators.ndtri import ndtri

KINDS = {"uniform": 0, "normal": 1, "truncated_normal": 2}


def normal_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


@dataclass(frozen=True)
class Transform:
    """value = loc + scale · T(u); T is u, Φ⁻¹(u) or Φ⁻¹ restricted to [lo, hi] standard deviations."""

    kind: str = "normal"
    loc: float = 0.0
    scale: float = 1.0
    lo: float = -2.0
    hi: float = 2.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"transform kind {self.kind!r} is not one of {sorted(KINDS)}")

    @staticmethod
    def uniform(a: float, b: float) -> Transform:
        return Transform("uniform", loc=a, scale=b - a)

    @property
    def code(self) -> int:
        return KINDS[self.kind]

    @property
    def cdf_window(self) -> tuple[float, float]:
        """(plo, pw): the truncated normal draws Φ⁻¹(plo + pw · u)."""
        if self.kind != "truncated_normal":
            return 0.0, 1.0
        plo = normal_cdf(self.lo)
        return plo, normal_cdf(self.hi) - plo

    def args(self) -> tuple[int, float, float, float, float]:
        plo, pw = self.cdf_window
        return self.code, float(self.loc), float(self.scale), plo, pw

    def apply(self, u: torch.Tensor) -> torch.Tensor:
        """Torch path on float64 u, in the same operation order as _fill.c."""
        if self.kind == "uniform":
            v = u
        elif self.kind == "normal":
            v = ndtri(u)
        else:
            plo, pw = self.cdf_window
            v = ndtri(u * pw + plo)
        return v.mul_(self.scale).add_(self.loc) if v is not u else (v * self.scale).add_(self.loc)


STANDARD_UNIFORM = Transform("uniform")
STANDARD_NORMAL = Transform("normal")

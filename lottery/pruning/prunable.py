"""The tensors a ticket prunes: their masks and target densities, one unit per tensor, or per stacked member
(``lottery.models.stacked``: K networks along dim 0, each member its own ticket)."""

from __future__ import annotations

import torch
from torch import nn

from lottery.init import members_of


class Prunable:
    """Masks (bool, one per tensor) and target densities (one per unit ``name#member``) of ``params``.

    ``rates``: each tensor's pruning rate; ``own_rate``: the tensors whose rate is their own (a
    ``layer_rates`` pattern, the output layer), which a global threshold leaves out of its pool.
    """

    def __init__(self, params: dict[str, nn.Parameter], rates: dict[str, float], own_rate: set[str]) -> None:
        stacked = {members_of(p) for p in params.values()}
        if len(stacked) > 1:
            raise ValueError(f"parameters: the prunable tensors stack different numbers of members ({stacked})")
        self.params, self.rates, self.own_rate = params, rates, own_rate
        self.members: int | None = stacked.pop()  # K, or None for an unstacked network
        self.masks: dict[str, torch.Tensor] = {}
        self.density: dict[str, float] = {}

    def reset(self) -> None:
        """Dense: every weight kept."""
        self.masks = {n: torch.ones_like(p, dtype=torch.bool) for n, p in self.params.items()}
        self.density = {self.unit(n, m): 1.0 for n, m in self.units()}

    def ids(self) -> list[int | None]:
        return list(range(self.members)) if self.members else [None]

    def units(self) -> list[tuple[str, int | None]]:
        return [(n, m) for n in self.params for m in self.ids()]

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Each tensor's shape as one member sees it."""
        return {n: tuple(p.shape[1:] if self.members else p.shape) for n, p in self.params.items()}

    @staticmethod
    def unit(name: str, member: int | None) -> str:
        return name if member is None else f"{name}#{member}"

    @staticmethod
    def slice(t: torch.Tensor, member: int | None) -> torch.Tensor:
        return t if member is None else t[member]

    def planned_rounds(self, target_density: float) -> int:
        """Rounds (the dense one included) until the prunable weights' density reaches ``target_density``."""
        sizes = {n: p[0].numel() if self.members else p.numel() for n, p in self.params.items()}
        total = sum(sizes.values())
        for k in range(1, 10_000):
            if sum(s * (1 - self.rates[n]) ** k for n, s in sizes.items()) / total <= target_density:
                return k + 1
        rates = ", ".join(f"{n} {r:g}" for n, r in sorted(self.rates.items()))
        raise ValueError(f"prune.target_density: {target_density} is unreachable with these per-round rates "
                         f"({rates}); give rates > 0 (prune.rate, conv_rate, output_rate, layer_rates) or a "
                         "reachable density")

"""Which weights survive a round: exact per-unit targets, layer-wise or global.

A *unit* is one prunable tensor of one member network. Each unit's target density is the product of its
per-round keep fractions, so after k rounds at 20 % a layer holds round(n · 0.8^k) weights exactly,
instead of drifting by a rounding error every round.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def keep_top(scores: torch.Tensor, mask: torch.Tensor, keep: int) -> torch.Tensor:
    """The new mask: the ``keep`` highest-scoring weights among the survivors (stable on ties)."""
    s = scores.double().reshape(-1).masked_fill(~mask.reshape(-1), float("-inf"))
    order = torch.sort(s, descending=True, stable=True).indices[:keep]
    new = torch.zeros(mask.numel(), dtype=torch.bool, device=mask.device)
    new[order] = True
    return new.reshape(mask.shape)


def select_layerwise(scores: torch.Tensor, mask: torch.Tensor, target_density: float) -> torch.Tensor:
    keep = min(int(mask.sum()), round(mask.numel() * target_density))
    return keep_top(scores, mask, keep)


def select_global(scores: list[torch.Tensor], masks: list[torch.Tensor],
                  target_density: float | Sequence[float]) -> list[torch.Tensor]:
    """One threshold across tensors: the pool keeps round(N · target) weights in total. Per-tensor targets
    (each tensor's exact schedule) pool to their size-weighted mean."""
    if not isinstance(target_density, float | int):
        sizes = [m.numel() for m in masks]
        target_density = sum(d * n for d, n in zip(target_density, sizes, strict=True)) / sum(sizes)
    flat_s = torch.cat([s.double().reshape(-1) for s in scores])
    flat_m = torch.cat([m.reshape(-1) for m in masks])
    keep = min(int(flat_m.sum()), round(flat_m.numel() * target_density))
    new = keep_top(flat_s, flat_m, keep)
    return [part.reshape(m.shape) for part, m in zip(new.split([m.numel() for m in masks]), masks, strict=True)]

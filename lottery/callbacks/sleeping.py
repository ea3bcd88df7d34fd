"""Sleeping weights: survivors that barely moved from their regenerated initial value."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


def sleeping_fractions(
    w: torch.Tensor, w0: torch.Tensor, mask: torch.Tensor, absolute: Iterable[float], relative: Iterable[float]
) -> dict[str, float]:
    """Fraction of surviving weights with |w − w0| ≤ τ, for absolute τ and τ relative to std(w0)."""
    moved = (w - w0).abs()[mask]
    alive = max(1, moved.numel())
    std = float(w0.double().std()) if w0.numel() > 1 else 0.0
    out = {f"abs_{t:g}": int((moved <= t).sum()) / alive for t in absolute}
    out.update({f"rel_{r:g}": int((moved <= r * std).sum()) / alive for r in relative})
    return out


@torch.no_grad()
def accuracy(module: nn.Module, batches: Iterable, device: torch.device, max_batches: int = 50) -> float:
    """Top-1 accuracy of ``module(x)`` over (x, y) batches: the sleeping check's measurement."""
    correct = total = 0
    for i, batch in enumerate(batches):
        if i >= max_batches:
            break
        x, y = batch[0].to(device), batch[1].to(device)
        correct += int((module(x).argmax(-1) == y).sum())
        total += y.numel()
    return correct / max(1, total)

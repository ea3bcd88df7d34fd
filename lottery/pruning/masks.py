"""Bool masks: 1 byte per prunable weight in memory, 1 bit in checkpoints, applied in place."""

from __future__ import annotations

import numpy as np
import torch


def pack_bits(mask: torch.Tensor) -> dict:
    """Bit-pack a bool mask (1 bit per weight) for checkpoints."""
    bits = np.packbits(mask.detach().cpu().numpy().reshape(-1))
    return {"shape": list(mask.shape), "bits": torch.from_numpy(bits)}


def unpack_bits(packed: dict, device: torch.device | str = "cpu") -> torch.Tensor:
    shape = tuple(packed["shape"])
    n = int(np.prod(shape))
    flat = np.unpackbits(packed["bits"].numpy(), count=n).astype(bool)
    return torch.from_numpy(flat).reshape(shape).to(device)


def multipliers(masks: list[torch.Tensor], params: list[torch.Tensor]) -> list[torch.Tensor]:
    """What ``w *= mask`` multiplies by on the hot path. On CPU, a mask in the weight's dtype: torch's CPU
    ``mul_`` converts a bool or uint8 operand to float on every call, which at K = 11 stacked LeNets is
    ≈ 30 % of a step; this costs 4 bytes per prunable weight, built once per round. Elsewhere (CUDA
    converts inside the kernel) a uint8 view of the bool mask's own storage: no extra memory."""
    return [
        m.to(p.dtype) if p.device.type == "cpu" else m.view(torch.uint8) if m.dtype == torch.bool else m
        for m, p in zip(masks, params, strict=True)
    ]


@torch.no_grad()
def apply_masks(params: list[torch.Tensor], masks: list[torch.Tensor]) -> None:
    """Zero the pruned weights in place (cheap enough to run after every optimizer step)."""
    if params:
        torch._foreach_mul_(params, multipliers(masks, params))

"""Bool masks: 1 byte per prunable weight in memory, 1 bit in checkpoints, applied in place."""

from __future__ import annotations

import numpy as np
import torch

from lottery.generators import can_mask_mul, mask_mul


def pack_bits(mask: torch.Tensor) -> dict:
    """Bit-pack a bool mask (1 bit per weight) for checkpoints."""
    bits = np.packbits(mask.detach().cpu().numpy().reshape(-1))
    return {"shape": list(mask.shape), "bits": torch.from_numpy(bits)}


def unpack_bits(packed: dict, device: torch.device | str = "cpu") -> torch.Tensor:
    shape = tuple(int(s) for s in packed["shape"])
    n = int(np.prod(shape))
    bits = np.asarray(packed["bits"])
    if bits.size * 8 < n or bits.size > (n + 7) // 8:  # np.unpackbits would pad a short buffer with zeros
        raise ValueError(f"a packed mask of shape {shape} needs {(n + 7) // 8} bytes, got {bits.size}")
    flat = np.unpackbits(bits, count=n).astype(bool)
    return torch.from_numpy(flat).reshape(shape).to(device)


def multipliers(masks: list[torch.Tensor], params: list[torch.Tensor]) -> list[torch.Tensor]:
    """What ``w *= mask`` multiplies by on the hot path: a uint8 view of the bool mask's own storage (no
    extra memory) where the C kernel (CPU) or the device (CUDA converts inside its kernel) can take it;
    else, on CPU without the kernel, a mask in the weight's dtype (4 bytes per weight, built once per
    round: torch's CPU ``mul_`` converts a bool/uint8 operand on every call, ≈ 30 % of a stacked step)."""
    return [
        m.to(p.dtype) if p.device.type == "cpu" and not can_mask_mul(p)
        else m.view(torch.uint8) if m.dtype == torch.bool else m
        for m, p in zip(masks, params, strict=True)
    ]


@torch.no_grad()
def apply_multipliers(params: list[torch.Tensor], mults: list[torch.Tensor]) -> None:
    """Zero the pruned weights in place, given ``multipliers(masks, params)`` (runs after every step)."""
    rest = []
    for p, m in zip(params, mults, strict=True):
        if m.dtype == torch.uint8 and p.device.type == "cpu":
            mask_mul(p, m)
        else:
            rest.append((p, m))
    if rest:
        torch._foreach_mul_([p for p, _ in rest], [m for _, m in rest])


@torch.no_grad()
def apply_masks(params: list[torch.Tensor], masks: list[torch.Tensor]) -> None:
    """Zero the pruned weights in place."""
    if params:
        apply_multipliers(params, multipliers(masks, params))

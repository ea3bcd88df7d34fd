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


class MaskedMultiply:
    """``w *= mask`` for a round's fixed tensors, planned once, run after every optimizer step.

    On CPU the C kernel multiplies by the bool mask's own bytes (no extra memory); on CUDA torch converts a
    uint8 view inside its kernel. Only on CPU without the C kernel does each mask get a copy in the weight's
    dtype (4 bytes per weight, built here once: torch's CPU ``mul_`` would convert a bool/uint8 operand on
    every call, ≈ 30 % of a stacked step)."""

    def __init__(self, params: list[torch.Tensor], masks: list[torch.Tensor]) -> None:
        self.kernel: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.params: list[torch.Tensor] = []
        self.factors: list[torch.Tensor] = []
        for p, m in zip(params, masks, strict=True):
            if can_mask_mul(p) and m.is_contiguous() and m.shape == p.shape:
                self.kernel.append((p, m.view(torch.uint8) if m.dtype == torch.bool else m))
            else:
                self.params.append(p)
                self.factors.append(m.to(p.dtype) if p.device.type == "cpu"
                                    else m.view(torch.uint8) if m.dtype == torch.bool else m)

    @torch.no_grad()
    def __call__(self) -> None:
        for p, m in self.kernel:
            mask_mul(p, m, check=False)  # checked once, above
        if self.params:
            torch._foreach_mul_(self.params, self.factors)

    def extra_bytes(self) -> int:
        """Memory beyond the masks themselves: the float copies, if any."""
        return sum(f.numel() * f.element_size() for f in self.factors if f.is_floating_point())


@torch.no_grad()
def apply_masks(params: list[torch.Tensor], masks: list[torch.Tensor]) -> None:
    """Zero the pruned weights in place, once (plan a ``MaskedMultiply`` to repeat it every step)."""
    MaskedMultiply(params, masks)()

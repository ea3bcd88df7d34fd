"""Several processes (DDP) train one network: every rank must hold the same masks, and only rank 0 writes.

Under DDP the weights stay equal on every rank (averaged gradients, the same updates), so magnitude pruning
chooses the same masks everywhere; a kernel that is not deterministic across processes would break that
silently, so each round's masks are compared across ranks and a difference stops the run on every rank.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import pytorch_lightning as pl
import torch


def mask_digest(masks: Mapping[str, torch.Tensor]) -> int:
    """56 bits of a SHA-256 over the masks' names and bits (fits an int64 tensor for ``all_gather``)."""
    h = hashlib.sha256()
    for name in sorted(masks):
        h.update(name.encode())
        h.update(masks[name].detach().to("cpu", torch.uint8).contiguous().numpy().tobytes())
    return int.from_bytes(h.digest()[:7], "big")


def check_ranks_agree(trainer: pl.Trainer, masks: Mapping[str, torch.Tensor], round_: int) -> None:
    """Raise on every rank (none is left waiting in a collective) unless all ranks hold the same masks."""
    if trainer.world_size < 2:
        return
    ours = torch.tensor([mask_digest(masks)], dtype=torch.int64, device=trainer.strategy.root_device)
    every = trainer.strategy.all_gather(ours).reshape(-1).tolist()
    if len(set(every)) > 1:
        raise RuntimeError(f"round {round_}: the ranks hold different masks (digests {every}); the weights "
                           "drifted apart across processes, so the run cannot go on (train.deterministic=true, or "
                           "one device)")

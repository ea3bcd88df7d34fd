"""A shuffling sampler for a user's own ``DataLoader`` whose order survives a kill and resume.

``DataLoader(shuffle=True)`` draws its order from torch's global generator, whose state a Lightning
checkpoint does not hold: a run resumed with ``trainer.fit(ckpt_path=…)`` then sees other batches than the
uninterrupted run, and its masks differ. ``EpochSampler``'s order is a pure function of (seed, epoch), and
Lightning hands it the epoch (``set_epoch``) before every epoch, resumed ones included, so the resumed run
ends bit-identical. ``lottery.data.TensorDataModule`` orders its batches the same way.
"""

from __future__ import annotations

from collections.abc import Iterator, Sized

import torch
from torch.utils.data import Sampler

from lottery.data.batches import epoch_seed


class EpochSampler(Sampler[int]):
    """``DataLoader(dataset, batch_size=…, sampler=EpochSampler(dataset, seed=0))`` instead of ``shuffle=True``."""

    def __init__(self, data_source: Sized | int, seed: int = 0) -> None:
        self.size = data_source if isinstance(data_source, int) else len(data_source)
        if self.size < 1:
            raise ValueError(f"EpochSampler: the dataset holds {self.size} items; it needs at least one")
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning before each epoch (as for ``DistributedSampler``)."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
        return iter(torch.randperm(self.size, generator=generator).tolist())

    def __len__(self) -> int:
        return self.size

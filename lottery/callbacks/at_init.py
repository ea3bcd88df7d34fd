"""What pruning at initialisation scores with, handed over by the callback: the module, its buffers at w0 (the
rewind's), and the first training batches of the current epoch."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from lottery.pruning.at_init import Batch
from lottery.pruning.next_masks import PruneAtInit


def first_batches(trainer: pl.Trainer, module: nn.Module, n: int) -> list[Batch]:
    """The first ``n`` (inputs, targets) batches of the training data, on the module's device. Our batches are
    a pure function of (seed, epoch), so drawing them changes nothing the training sees."""
    return batches_of(trainer.train_dataloader, next(module.parameters()).device, n)


def batches_of(loader: Iterable[Any], device: torch.device, n: int) -> list[Batch]:
    """The first ``n`` (inputs, targets) batches a loader yields; items that group several batches
    (``train.steps_per_call``) are taken apart."""
    out: list[Batch] = []
    for item in loader:
        # ours group batches as a list of (x, y); a plain DataLoader's item is one batch, [x, y] or (x, y)
        grouped = isinstance(item, list | tuple) and len(item) > 0 and isinstance(item[0], list | tuple)
        for x, y, *_ in item if grouped else [item]:
            out.append((x.to(device), y.to(device)))
            if len(out) == n:
                return out
    return out


def attach(strategy: PruneAtInit, trainer: pl.Trainer, module: nn.Module, batches: int,
           buffers: Callable[[], dict[str, torch.Tensor]]) -> None:
    strategy.attach(lambda: (module, buffers(), first_batches(trainer, module, batches)))

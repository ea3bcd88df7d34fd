"""A Lightning module written without this project in mind, and synthetic data, for callback tests."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lottery.config import PruneConfig


class PlainClassifier(pl.LightningModule):
    """An ordinary user module: nothing here knows about lottery."""

    def __init__(
        self, optimizer: str = "adam", lr: float = 1e-2, weight_decay: float = 0.0, scheduler: bool = False
    ) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 4))
        self.optimizer, self.lr, self.weight_decay, self.scheduler = optimizer, lr, weight_decay, scheduler

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.log("val_loss", nn.functional.cross_entropy(logits, y))
        self.log("val_acc", (logits.argmax(-1) == y).float().mean(), prog_bar=True)

    def configure_optimizers(self):
        if self.optimizer == "adam":
            opt = torch.optim.Adam(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        else:
            opt = torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9, weight_decay=self.weight_decay)
        if not self.scheduler:
            return opt
        return {"optimizer": opt, "lr_scheduler": torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)}


def synthetic(n: int = 512, seed: int = 0) -> tuple[DataLoader, DataLoader]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 20, generator=g)
    y = (x[:, :4].argmax(-1) + (x[:, 4] > 1).long()) % 4
    train = DataLoader(TensorDataset(x[: n * 3 // 4], y[: n * 3 // 4]), batch_size=32)
    val = DataLoader(TensorDataset(x[n * 3 // 4 :], y[n * 3 // 4 :]), batch_size=64)
    return train, val


def trainer(**kwargs) -> pl.Trainer:
    defaults = dict(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        deterministic=True,
        num_sanity_val_steps=0,
    )
    defaults.update(kwargs)
    return pl.Trainer(**defaults)


def crash_at_epoch(n: int, run) -> None:
    """Run ``run()`` with a simulated crash as the ``n``-th training epoch starts (counted across its fits),
    as a kill would leave it: the last epoch's checkpoint on disk, nothing after it."""
    import pytest

    from lottery.classifier import Classifier

    calls = {"n": 0}

    def crash(self: Classifier) -> None:
        calls["n"] += 1
        if calls["n"] == n:
            raise RuntimeError("simulated crash")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Classifier, "on_train_epoch_start", crash, raising=False)
        with pytest.raises(RuntimeError, match="simulated crash"):
            run()


def quick_prune(**fields) -> PruneConfig:
    """The callback tests' schedule: one epoch per round, every layer at ``rate`` (no separate output rate), no
    sleeping-weight measurements; ``fields`` override."""
    return PruneConfig(**{"epochs_per_round": 1, "output_rate": None, "sleeping_thresholds": (),
                          "sleeping_relative": (), **fields})

"""A user's LightningCLI script, with nothing lottery-specific in it: the callback comes from the command line."""

import os

import pytorch_lightning as pl
import torch
from pytorch_lightning.cli import LightningCLI
from torch.utils.data import DataLoader, TensorDataset

from lottery.cli import Parser
from tests.lightning_helpers import PlainClassifier


class Synthetic(pl.LightningDataModule):
    def train_dataloader(self) -> DataLoader:
        g = torch.Generator().manual_seed(0)
        x, y = torch.randn(64, 20, generator=g), torch.randint(0, 4, (64,), generator=g)
        return DataLoader(TensorDataset(x, y), batch_size=16)

    val_dataloader = train_dataloader


if __name__ == "__main__":  # LOTTERY_PARSER=1: with lottery.cli.Parser, the one-line errors
    parser = {"parser_class": Parser} if os.environ.get("LOTTERY_PARSER") else {}
    LightningCLI(PlainClassifier, Synthetic, save_config_callback=None, **parser)

"""One LightningDataModule for every registered dataset, holding the images as uint8 tensors."""

from __future__ import annotations

import os
from collections.abc import Sequence

import pytorch_lightning as pl
import torch

from lottery import checks
from lottery.data.batches import Augment, TensorBatches
from lottery.data.sources import DATASETS, Arrays, resolve_root


class TensorDataModule(pl.LightningDataModule):
    """Train / validation / test batches for ``dataset`` (a key of ``DATASETS``).

    Args:
        root: data root (else ``$LOTTERY_DATA``, else ``~/.cache/lottery/data``).
        val_size: images held out of the training set for validation (Frankle & Carbin: 5,000); 0 for none.
        split_seed: seed of the validation split (kept fixed across a grid so every start sees one split).
        seed: seed of the batch order (epoch e's order depends only on seed and e); one per member for
            stacked members, each then seeing the batches it would see alone.
        augment: crop-and-flip augmentation; ``None`` uses the dataset's standard recipe (CIFAR: on).
        train_subset / test_subset: keep only the first N images (quick runs, tests).
        device: where the tensors live; ``None`` follows the trainer's device.
        steps_per_call: training batches handed over per item (``TensorBatches.chunk``); the ``Classifier``
            takes one optimizer step per batch either way.
    """

    def __init__(
        self,
        dataset: str = "mnist",
        *,
        root: str | os.PathLike | None = None,
        batch_size: int = 60,
        eval_batch_size: int = 1000,
        val_size: int = 5000,
        split_seed: int = 0,
        seed: int | Sequence[int] = 0,
        augment: bool | None = None,
        train_subset: int | None = None,
        test_subset: int | None = None,
        download: bool = True,
        device: str | torch.device | None = None,
        steps_per_call: int = 1,
    ) -> None:
        super().__init__()
        checks.choice("data.dataset", dataset, sorted(DATASETS))
        self.dataset, self.info = dataset, DATASETS[dataset]
        self.root = resolve_root(root)
        self.batch_size, self.eval_batch_size, self.val_size = batch_size, eval_batch_size, val_size
        self.split_seed, self.seed, self.download, self.device = split_seed, seed, download, device
        self.augment = self.info.augment if augment is None else augment
        self.train_subset, self.test_subset, self.steps_per_call = train_subset, test_subset, steps_per_call
        self.tensors: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}


    def load(self) -> Arrays:
        """Read the raw uint8 arrays (raises ``DataMissingError`` with instructions when absent)."""
        return self.info.read(self.root, self.download)

    def prepare(self, device: str | torch.device = "cpu") -> None:
        """Split, subset and normalise once; idempotent, so calling it early checks the data before a run."""
        if self.tensors:
            return
        arrays = self.load()
        n = len(arrays.train_x)
        if n == 0:
            raise ValueError(f"data: the training images of {self.dataset} are empty (0 images); replace the data "
                             "files")
        checks.in_range("data.val_size", self.val_size, 0, n - 1, "a count of training images")
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(self.split_seed))
        val_idx, train_idx = perm[: self.val_size], perm[self.val_size :].sort().values
        train_idx = train_idx[: self.train_subset] if self.train_subset else train_idx
        test = slice(0, self.test_subset) if self.test_subset else slice(None)
        # images stay uint8 (a quarter of float32's memory); batches are normalised as they are drawn, which
        # gives bit for bit the values normalising everything up front gives (elementwise float ops)
        self.tensors["train"] = arrays.train_x[train_idx].to(device), arrays.train_y[train_idx].to(device)
        if self.val_size:
            val = val_idx.sort().values
            self.tensors["val"] = arrays.train_x[val].to(device), arrays.train_y[val].to(device)
        self.tensors["test"] = arrays.test_x[test].to(device), arrays.test_y[test].to(device)
        for name, (x, _) in self.tensors.items():
            if not len(x):  # a run that trains or evaluates on nothing would "finish" with test_acc None
                raise ValueError(f"data: the {name} split of {self.dataset} holds 0 images; the data files are "
                                 "empty (replace them) or data.train_subset / test_subset are too small")
            if x.dtype != torch.uint8:
                raise ValueError(f"data: {self.dataset} {name} images are stored as {x.dtype}, not uint8 pixels "
                                 "(0..255); convert the files to uint8 IDX")
        self._mean = torch.tensor(self.info.mean).view(1, -1, 1, 1).to(device)
        self._std = torch.tensor(self.info.std).view(1, -1, 1, 1).to(device)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 images (``[…, C, H, W]``) as the network sees them: ``(x / 255 − mean) / std``."""
        return (x.float() / 255 - self._mean) / self._std

    def normalized(self, name: str) -> torch.Tensor:
        """A whole split, normalised (a float copy: for inspection and benchmarks, not the training path)."""
        return self.normalize(self.tensors[name][0]).contiguous()

    def setup(self, stage: str) -> None:
        device = self.device
        if device is None:
            device = self.trainer.strategy.root_device if self.trainer is not None else "cpu"
        self.prepare(device)
        if self._mean.device != torch.device(device):  # prepared early on the CPU; move once, keep it there
            self.tensors = {k: (x.to(device), y.to(device)) for k, (x, y) in self.tensors.items()}
            self._mean, self._std = self._mean.to(device), self._std.to(device)

    def train_dataloader(self) -> TensorBatches:
        x, y = self.tensors["train"]
        # crops pad with black: uint8 0, whose normalised value is the -mean/std of padding after normalising
        augment = Augment(4, torch.zeros(x.shape[1], dtype=x.dtype, device=x.device)) if self.augment else None
        t = self.trainer  # under DDP each rank trains on its part of every batch (evaluation stays whole)
        shard = (t.global_rank, t.world_size) if t is not None else (0, 1)
        return TensorBatches(x, y, self.batch_size, shuffle=True, seed=self.seed, augment=augment,
                             chunk=self.steps_per_call, normalize=self.normalize, shard=shard)

    def val_dataloader(self) -> list[TensorBatches]:
        """Validation then test: both evaluated at every evaluation, logged as ``val_*`` and ``test_*``."""
        names = [n for n in ("val", "test") if n in self.tensors]
        return [TensorBatches(*self.tensors[n], self.eval_batch_size, normalize=self.normalize) for n in names]

    def test_dataloader(self) -> TensorBatches:
        return TensorBatches(*self.tensors["test"], self.eval_batch_size, normalize=self.normalize)

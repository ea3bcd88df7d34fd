"""Datasets as normalised tensors: MNIST, Fashion-MNIST and CIFAR-10 (see ``sources.DATASETS``)."""

from lottery.data.batches import Augment, TensorBatches
from lottery.data.datamodule import TensorDataModule
from lottery.data.sources import DATASETS, ENV_VAR, DataMissingError, resolve_root

__all__ = ["DATASETS", "ENV_VAR", "Augment", "DataMissingError", "TensorBatches", "TensorDataModule", "resolve_root"]

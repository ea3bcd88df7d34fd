"""Datasets as normalised tensors: MNIST, Fashion-MNIST and CIFAR-10 (see ``sources.DATASETS``)."""

from typing import Any

from lottery.data.sources import DATASETS, ENV_VAR, DataMissingError, resolve_root

__all__ = ["DATASETS", "ENV_VAR", "Augment", "DataMissingError", "EpochSampler", "TensorBatches", "TensorDataModule",
           "resolve_root"]


def __getattr__(name: str) -> Any:
    # the Lightning-facing classes load on first use: checking a config (--print-config) needs only the
    # registry, and importing Lightning costs seconds
    if name in ("Augment", "TensorBatches"):
        from lottery.data import batches

        return getattr(batches, name)
    if name == "EpochSampler":
        from lottery.data.sampler import EpochSampler

        return EpochSampler
    if name == "TensorDataModule":
        from lottery.data.datamodule import TensorDataModule

        return TensorDataModule
    raise AttributeError(f"module 'lottery.data' has no attribute {name!r}")

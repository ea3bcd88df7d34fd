"""Small synthetic datasets in the real on-disk formats (CIFAR-10 pickles, MNIST IDX), for tests."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from lottery.data.idx import write_idx

REAL_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def fake_cifar10(root: Path, per_batch: int = 40, seed: int = 0) -> Path:
    """``root/cifar-10-batches-py`` with 5 training batches and a test batch; labels follow mean colour."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        labels = rng.integers(0, 10, per_batch)
        images = rng.integers(0, 256, (per_batch, 3, 32, 32)).astype(np.uint8)
        images[:, 0] = (labels * 25)[:, None, None].astype(np.uint8)  # a learnable signal in the red channel
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": images.reshape(per_batch, -1), b"labels": labels.tolist()}, f)
    return root


def fake_mnist(root: Path, n_train: int = 300, n_test: int = 100, folder: str = "MNIST", gz: bool = True) -> Path:
    rng = np.random.default_rng(1)
    raw = root / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 256, (n, 28, 28)).astype(np.uint8)
        write_idx(raw / f"{prefix}-images-idx3-ubyte{suffix}", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
    return root

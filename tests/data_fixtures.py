"""Small synthetic datasets in the real on-disk formats (CIFAR-10 pickles, MNIST IDX), for tests."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from lottery.data.idx import write_idx

# real data: $LOTTERY_DATA (CI sets it), else ../shared/data beside the repository
REAL_ROOT = Path(os.environ.get("LOTTERY_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data")
needs_mnist = pytest.mark.skipif(not (REAL_ROOT / "MNIST" / "raw").is_dir(),
                                 reason=f"real MNIST not found under {REAL_ROOT} (set $LOTTERY_DATA)")


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


def synthetic_results(path: Path, effect: float = 0.02, seeds: int = 6, rounds: int = 4, noise: float = 0.002) -> Path:
    """A grid results table where ``good`` beats ``base`` by ``effect`` and ``same`` equals ``base`` in
    distribution; accuracies fall as weights are pruned."""
    import csv

    rng = np.random.default_rng(7)
    columns = ["model", "dataset", "scheme", "source", "scale", "seed", "start", "round", "epoch", "remaining_pct",
               "test_acc", "val_acc", "best_monitor", "epochs_to_best", "steps_to_best", "test_acc_at_best", "run",
               "sleeping_rel_0.1"]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, columns)
        w.writeheader()
        base_noise = rng.normal(0, noise, (rounds, seeds))
        for start, shift in (("base", 0.0), ("good", effect), ("same", 0.0)):
            # "same": base's very values with the seeds reversed — identical distributions, p = 1
            noise_of = {"base": base_noise, "same": base_noise[:, ::-1], "good": rng.normal(0, noise, (rounds, seeds))}
            for seed in range(seeds):
                for r in range(rounds):
                    acc = 0.97 - 0.002 * r + shift + noise_of[start][r, seed]
                    w.writerow({"model": "lenet_300_100", "dataset": "mnist", "scheme": start, "source": "hash",
                                "scale": 1.0, "seed": seed, "start": start, "round": r, "epoch": r,
                                "remaining_pct": 100 * 0.8**r, "test_acc": acc, "val_acc": acc,
                                "best_monitor": 0.1, "epochs_to_best": 1 + (r + seed) % 3, "steps_to_best": 10,
                                "test_acc_at_best": acc, "run": f"{start}-{seed}", "sleeping_rel_0.1": 0.01 * r})
    return path

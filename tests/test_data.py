"""Datasets as tensors: IDX decoding, the real MNIST files, splits, batch order, augmentation, errors."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from lottery.data import Augment, DataMissingError, TensorBatches, TensorDataModule, sources
from lottery.data.idx import read_idx, write_idx
from tests.data_fixtures import REAL_ROOT, fake_cifar10, fake_mnist, needs_mnist


def test_idx_round_trip_gzipped_and_plain(tmp_path: Path) -> None:
    data = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    for name in ("a.gz", "b"):
        write_idx(tmp_path / name, data)
        assert torch.equal(read_idx(tmp_path / name), torch.from_numpy(data))
    (tmp_path / "c").write_bytes((tmp_path / "b").read_bytes()[:-1])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        read_idx(tmp_path / "c")
    (tmp_path / "d").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="not an IDX file of the expected kind"):
        read_idx(tmp_path / "d")


@needs_mnist
def test_real_mnist_from_a_read_only_gzip_folder() -> None:
    before = sorted(os.listdir(REAL_ROOT / "MNIST" / "raw"))
    dm = TensorDataModule("mnist", root=REAL_ROOT, download=False)
    arrays = dm.load()
    assert arrays.train_x.shape == (60000, 1, 28, 28) and arrays.test_x.shape == (10000, 1, 28, 28)
    assert arrays.train_y[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]  # the well-known first labels
    assert arrays.test_y[:5].tolist() == [7, 2, 1, 0, 4]
    assert torch.bincount(arrays.train_y).tolist()[:2] == [5923, 6742]
    dm.prepare()
    sizes = {k: len(x) for k, (x, _) in dm.tensors.items()}
    assert sizes == {"train": 55000, "val": 5000, "test": 10000}
    assert dm.tensors["train"][0].dtype == torch.uint8  # a quarter of float32's memory
    x = dm.normalized("train")
    assert abs(x.mean().item()) < 0.01 and abs(x.std().item() - 1) < 0.01  # normalised with MNIST's mean/std
    assert sorted(os.listdir(REAL_ROOT / "MNIST" / "raw")) == before  # nothing extracted next to the .gz files


def test_validation_split_is_deterministic_disjoint_and_seeded(tmp_path: Path) -> None:
    root = fake_mnist(tmp_path, n_train=200, n_test=50)

    def split(seed: int) -> dict[str, torch.Tensor]:
        dm = TensorDataModule("mnist", root=root, val_size=30, split_seed=seed, download=False)
        dm.prepare()
        return {k: x.flatten(1) for k, (x, _) in dm.tensors.items()}

    a, b, c = split(0), split(0), split(1)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["val"], c["val"])
    rows = {tuple(r.tolist()) for r in torch.cat([a["train"], a["val"]])}
    assert len(rows) == 200 and len(a["val"]) == 30 and len(a["test"]) == 50


def test_batches_cover_each_sample_once_per_epoch_in_an_order_fixed_by_seed_and_epoch() -> None:
    x, y = torch.arange(50.0).view(50, 1), torch.arange(50)
    b = TensorBatches(x, y, 8, shuffle=True, seed=5)
    assert len(b) == 7 and len(TensorBatches(x, y, 8, drop_last=True)) == 6

    def order(seed: int, epoch: int) -> list[int]:
        batches = TensorBatches(x, y, 8, shuffle=True, seed=seed)
        batches.sampler.set_epoch(epoch)  # what Lightning calls at each epoch start
        return torch.cat([yb for _, yb in batches]).tolist()

    assert sorted(order(5, 0)) == list(range(50))
    assert order(5, 3) == order(5, 3)
    assert order(5, 0) != order(5, 1) and order(5, 0) != order(6, 0)
    assert [yb.tolist() for _, yb in TensorBatches(x, y, 20)] == [list(range(20)), list(range(20, 40)),
                                                                  list(range(40, 50))]


def test_augmentation_equals_a_per_image_reference() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 3, 8, 8, generator=g)
    fill = torch.tensor([-1.0, -2.0, -3.0])
    out = Augment(2, fill)(x, torch.Generator().manual_seed(9))
    draws = torch.Generator().manual_seed(9)  # same draws, same order: dy, dx, flip
    dy, dx = torch.randint(0, 5, (6,), generator=draws), torch.randint(0, 5, (6,), generator=draws)
    flip = torch.rand(6, generator=draws) < 0.5
    for i in range(6):
        padded = fill.view(3, 1, 1).expand(3, 12, 12).clone()
        padded[:, 2:10, 2:10] = x[i]
        crop = padded[:, dy[i] : dy[i] + 8, dx[i] : dx[i] + 8]
        assert torch.equal(out[i], crop.flip(2) if flip[i] else crop), i
    assert flip.any() and not flip.all()


def test_cifar10_from_the_python_pickles(tmp_path: Path) -> None:
    dm = TensorDataModule("cifar10", root=fake_cifar10(tmp_path, per_batch=20), val_size=10, download=False)
    dm.prepare()
    assert dm.augment  # the standard CIFAR recipe is on unless the config says otherwise
    assert {k: tuple(x.shape) for k, (x, _) in dm.tensors.items()} == {
        "train": (90, 3, 32, 32), "val": (10, 3, 32, 32), "test": (20, 3, 32, 32)}
    xb, yb = next(iter(dm.train_dataloader()))
    assert xb.shape == (60, 3, 32, 32) and yb.dtype == torch.int64
    assert xb.dtype == torch.float32 and not torch.equal(xb, dm.normalized("train")[:60])


def test_fashion_mnist_from_the_debian_package_folder(tmp_path: Path) -> None:
    if not Path("/usr/share/datasets/fashion-mnist").is_dir():
        pytest.skip("apt-get install dataset-fashion-mnist")
    arrays = TensorDataModule("fashion_mnist", root=tmp_path, download=False).load()
    assert arrays.train_x.shape == (60000, 1, 28, 28)
    assert torch.bincount(arrays.train_y).tolist() == [6000] * 10


def test_missing_data_says_which_files_go_where(tmp_path: Path) -> None:
    with pytest.raises(DataMissingError) as e:
        TensorDataModule("mnist", root=tmp_path, download=False).load()
    msg = str(e.value)
    for text in ("train-images-idx3-ubyte", "t10k-labels-idx1-ubyte", f"{tmp_path}/MNIST/raw", "$LOTTERY_DATA",
                 "data.download=false"):
        assert text in msg, text
    with pytest.raises(DataMissingError, match="cifar-10-batches-py/ holds data_batch_1…5 and test_batch"):
        TensorDataModule("cifar10", root=tmp_path, download=False).load()


def test_root_from_config_or_environment_and_bad_roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_mnist(tmp_path / "here", n_train=20, n_test=10)
    monkeypatch.setenv("LOTTERY_DATA", str(tmp_path / "here"))
    assert len(TensorDataModule("mnist", download=False, val_size=5).load().train_x) == 20
    monkeypatch.setenv("LOTTERY_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(DataMissingError, match=r"\$LOTTERY_DATA: '.*nowhere' does not exist"):
        TensorDataModule("mnist")
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataMissingError, match="data.root: '.*file' is not a readable directory"):
        TensorDataModule("mnist", root=tmp_path / "file")
    with pytest.raises(ValueError, match="data.val_size: 20 is not valid; use a count of training images in 0..19"):
        TensorDataModule("mnist", root=tmp_path / "here", val_size=20, download=False).prepare()


def test_a_failed_download_leaves_no_folder_and_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Offline, the cache folders the download made are removed again (no empty ~/.cache/lottery), and the
    reason torchvision gives on the lines after "Error downloading …:" reaches the one-line error."""
    cache = tmp_path / "home" / ".cache" / "lottery" / "data"
    (tmp_path / "home").mkdir()
    monkeypatch.setattr(sources, "DEFAULT_ROOT", cache)
    unwritable = tmp_path / "missing"  # not a writable root (as a read-only data folder): the cache is used

    def offline(target: Path) -> None:
        (target / "MNIST" / "raw").mkdir(parents=True)
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried https://x/, got: no network\n")

    where, why = sources._download(unwritable, offline)
    assert where is None and why == "RuntimeError: Error downloading train-images-idx3-ubyte.gz: Tried https://x/, " \
                                    "got: no network"
    assert sorted(p.name for p in (tmp_path / "home").iterdir()) == []
    (tmp_path / "home" / ".cache").mkdir()
    (tmp_path / "home" / ".cache" / "other").mkdir()  # someone else's: stays
    sources._download(unwritable, offline)
    assert sorted(p.name for p in (tmp_path / "home" / ".cache").iterdir()) == ["other"]

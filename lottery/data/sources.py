"""Where each dataset's files live and how they become uint8 tensors: a small registry.

Each reader returns ``Arrays`` (N×C×H×W uint8 images, int64 labels) from a data root, or raises
``DataMissingError`` with a message that says which files to put where.
"""

from __future__ import annotations

import os
import pickle
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lottery.data.idx import read_idx

ENV_VAR = "LOTTERY_DATA"
DEFAULT_ROOT = Path("~/.cache/lottery/data").expanduser()


class DataMissingError(FileNotFoundError):
    """The dataset's files are not under the data root and could not be downloaded."""


@dataclass(frozen=True)
class Arrays:
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor


@dataclass(frozen=True)
class DatasetInfo:
    shape: tuple[int, int, int]
    classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: bool  # the standard recipe: random crop with 4-pixel padding and horizontal flips
    read: Callable[[Path, bool], Arrays]


def resolve_root(root: str | os.PathLike | None) -> Path:
    """``data.root`` if given, else ``$LOTTERY_DATA``, else ``~/.cache/lottery/data``; checked readable."""
    source = "data.root"
    if root is None or str(root) == "":
        root, source = os.environ.get(ENV_VAR) or None, f"${ENV_VAR}"
    if root is None:
        return DEFAULT_ROOT
    path = Path(root).expanduser()
    if not path.exists():
        raise DataMissingError(f"{source}: {str(path)!r} does not exist; point it at the folder that holds the "
                               "datasets (e.g. …/data with MNIST/raw inside)")
    if not path.is_dir() or not os.access(path, os.R_OK | os.X_OK):
        raise DataMissingError(f"{source}: {str(path)!r} is not a readable directory")
    return path


def _find(folders: list[Path], name: str) -> Path | None:
    for folder in folders:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def _download(root: Path, fetch: Callable[[Path], object]) -> tuple[Path | None, str]:
    """Download into ``root`` (or the user cache when ``root`` is read-only); returns (where, error)."""
    target = root if os.access(root, os.W_OK) else DEFAULT_ROOT
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(20)  # an offline machine should fail in seconds, not hang
    top = next((a for a in [*reversed(target.parents), target] if not a.exists()), None)  # first folder made
    before = _tree(target)
    try:
        target.mkdir(parents=True, exist_ok=True)
        fetch(target)
        return target, ""
    except Exception as e:  # noqa: BLE001  (any network or filesystem failure means "not available")
        _remove_new_empty_folders(target, before)  # a failed download leaves no empty MNIST/raw/ behind
        for folder in [target, *target.parents] if top is not None else []:  # nor an empty ~/.cache/lottery
            if folder == top.parent or (folder.is_dir() and any(folder.iterdir())):
                break
            if folder.is_dir():
                folder.rmdir()
        why = " ".join(str(e).split())  # torchvision puts the reason on the lines after "Error downloading …:"
        return None, f"{type(e).__name__}: {why}"[:300]
    finally:
        socket.setdefaulttimeout(previous)


def _tree(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")} | {root} if root.is_dir() else set()


def _remove_new_empty_folders(root: Path, before: set[Path]) -> None:
    """Folders the failed download created and left empty, deepest first; anything with files stays."""
    for folder in sorted((p for p in _tree(root) - before if p.is_dir()), key=lambda p: -len(p.parts)):
        try:
            folder.rmdir()
        except OSError:
            pass
    if root not in before and root.is_dir() and not any(root.iterdir()):
        root.rmdir()


IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _idx_reader(folder: str, system: tuple[str, ...], tv_class: str) -> Callable[[Path, bool], Arrays]:
    def read(root: Path, download: bool) -> Arrays:
        folders = [root / folder / "raw", root / folder, *map(Path, system), DEFAULT_ROOT / folder / "raw"]
        paths = [_find(folders, f) for f in IDX_FILES]
        error = "download disabled (data.download=false)"
        if None in paths and download:
            import torchvision.datasets as tvd

            where, error = _download(root, lambda t: getattr(tvd, tv_class)(str(t), download=True))
            if where is not None:
                paths = [_find([where / folder / "raw"], f) for f in IDX_FILES]
        if None in paths:
            missing = [f for f, p in zip(IDX_FILES, paths, strict=False) if p is None]
            raise DataMissingError(
                f"{folder} not found: missing {', '.join(missing)} (.gz or uncompressed) under "
                f"{root / folder / 'raw'}; {error}. Put the four IDX files train-images-idx3-ubyte, "
                f"train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (gzipped or not) in "
                f"<root>/{folder}/raw/, where <root> is data.root or ${ENV_VAR} (now {root}), or run where "
                "the internet is reachable with data.download=true."
            )
        tx, ty, vx, vy = (read_idx(p, 3 if "images" in p.name else 1) for p in paths)  # type: ignore[union-attr]
        for images, labels, x_path, y_path in ((tx, ty, paths[0], paths[1]), (vx, vy, paths[2], paths[3])):
            if images.dtype != torch.uint8 or labels.dtype != torch.uint8:
                bad, what = (x_path, images.dtype) if images.dtype != torch.uint8 else (y_path, labels.dtype)
                raise ValueError(f"{bad} stores {what} values; {folder} files hold uint8 (pixels 0..255, labels "
                                 "0..9): convert it, or replace it with the original file")
            if images.shape[1:] != (28, 28):
                raise ValueError(f"{x_path} holds {tuple(images.shape[1:])} images; {folder} images are 28×28")
            if len(images) != len(labels):
                raise ValueError(f"{x_path} holds {len(images)} images but {y_path} {len(labels)} labels; "
                                 "they must match (a mixed-up or damaged file)")
            if len(labels) and not 0 <= int(labels.min()) <= int(labels.max()) < 10:
                raise ValueError(f"{y_path} has labels {int(labels.min())}..{int(labels.max())}; {folder} has "
                                 "classes 0..9")
        return Arrays(tx.unsqueeze(1), ty.long(), vx.unsqueeze(1), vy.long())

    return read


CIFAR_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)
# CIFAR-10's python batches are pickles of a dict with a numpy array: these globals rebuild that and nothing else
CIFAR_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"), ("_codecs", "encode"),
}


class ArraysOnlyUnpickler(pickle.Unpickler):
    """Unpickles CIFAR-10's batch files but refuses any other global, so a crafted file cannot run code."""

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in CIFAR_GLOBALS:
            raise pickle.UnpicklingError(f"it asks to call {module}.{name} on loading; refused unread")
        return super().find_class(module, name)


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 batch file as (N×3×32×32 uint8 images, int64 labels); ``ValueError`` naming the file."""
    try:
        with open(path, "rb") as f:
            batch = ArraysOnlyUnpickler(f, encoding="bytes").load()
        images = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except pickle.UnpicklingError as e:
        raise ValueError(f"{path} is not a CIFAR-10 batch: {e}") from None
    except Exception as e:  # noqa: BLE001  (whatever damaged bytes provoke)
        raise ValueError(f"{path} is not a CIFAR-10 batch ({type(e).__name__}); unpack cifar-10-python.tar.gz "
                         "again") from None
    if len(images) != len(labels):
        raise ValueError(f"{path} holds {len(images)} images but {len(labels)} labels (a damaged file)")
    return images, labels


def read_cifar10(root: Path, download: bool) -> Arrays:
    folder = root / "cifar-10-batches-py"
    error = "download disabled (data.download=false)"
    if not all((folder / f).is_file() for f in CIFAR_FILES) and download:
        import torchvision.datasets as tvd

        where, error = _download(root, lambda t: tvd.CIFAR10(str(t), download=True))
        if where is not None:
            folder = where / "cifar-10-batches-py"
    missing = [f for f in CIFAR_FILES if not (folder / f).is_file()]
    if missing:
        raise DataMissingError(
            f"CIFAR-10 not found: missing {', '.join(missing)} in {folder}; {error}. Unpack "
            "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz so that <root>/cifar-10-batches-py/ holds "
            f"data_batch_1…5 and test_batch, where <root> is data.root or ${ENV_VAR} (now {root}), or run where "
            "the internet is reachable with data.download=true."
        )

    def load(names: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        batches = [read_cifar_batch(folder / name) for name in names]
        xs, ys = [b[0] for b in batches], [b[1] for b in batches]
        return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))

    return Arrays(*load(CIFAR_FILES[:5]), *load(CIFAR_FILES[5:]))


DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo((1, 28, 28), 10, (0.1307,), (0.3081,), False, _idx_reader("MNIST", (), "MNIST")),
    "fashion_mnist": DatasetInfo(
        (1, 28, 28), 10, (0.2860,), (0.3530,), False,
        _idx_reader("FashionMNIST", ("/usr/share/datasets/fashion-mnist",), "FashionMNIST"),
    ),
    "cifar10": DatasetInfo(
        (3, 32, 32), 10, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), True, read_cifar10
    ),
}

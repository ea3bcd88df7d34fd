"""A ticket's masks, one file per pruning level, so that controls can reuse them (``masks_from``).

``<dir>/round-03.npz`` holds the masks round 3 trained with: per prunable tensor its bit-packed mask
(``name``) and shape (``name::shape``). LeNet-300-100 takes 33 KB per level. Files are written atomically,
once per round; rewriting a level (a resumed run) writes the same bytes.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from lottery.atomic import write_bytes
from lottery.checks import not_a
from lottery.pruning.masks import pack_bits, unpack_bits

_LEVEL = re.compile(r"^round-(\d+)\.npz$")


class MaskSourceError(ValueError):
    """A ``masks_from`` source that is missing, unreadable or does not fit the network."""


def level_path(folder: str | Path, level: int) -> Path:
    return Path(folder) / f"round-{level:02d}.npz"


def save_level(folder: str | Path, level: int, masks: Mapping[str, torch.Tensor]) -> None:
    arrays: dict[str, np.ndarray] = {}
    for name, mask in masks.items():
        packed = pack_bits(mask)
        arrays[name] = packed["bits"].numpy()
        arrays[f"{name}::shape"] = np.asarray(packed["shape"], dtype=np.int64)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    write_bytes(level_path(folder, level), buf.getvalue())


def mask_folder(source: str | Path) -> Path:
    """A run directory (holding ``masks/``) or the masks folder itself."""
    source = Path(source)
    return source / "masks" if (source / "masks").is_dir() else source


def count_levels(source: str | Path) -> int:
    """How many consecutive levels (round 0, 1, …) the source holds."""
    folder = mask_folder(source)
    found = {int(m.group(1)) for f in folder.glob("round-*.npz") if (m := _LEVEL.match(f.name))}
    n = 0
    while n in found:
        n += 1
    return n


def load_levels(source: str | Path, rounds: int | None = None) -> list[dict[str, torch.Tensor]]:
    """The masks of levels 0 … rounds − 1 (all consecutive levels when ``rounds`` is None)."""
    folder = mask_folder(source)
    if not folder.is_dir():
        raise MaskSourceError(f"masks_from: {str(source)!r} {not_a(folder, 'folder')}; give the directory of a "
                              "finished lottery run (it holds masks/round-*.npz)")
    n = count_levels(folder)
    if n == 0:
        raise MaskSourceError(f"masks_from: {str(source)!r} holds no masks (masks/round-00.npz, round-01.npz, …); "
                              "runs record them since masks_from exists, so rerun the IMP experiment")
    if rounds is not None and rounds > n:
        raise MaskSourceError(f"masks_from: {str(source)!r} holds {n} levels (rounds 0–{n - 1}), but {rounds} "
                              f"rounds were asked for; use rounds ≤ {n}")
    out = []
    for level in range(n if rounds is None else rounds):
        path = level_path(folder, level)
        try:
            with np.load(path) as data:
                arrays = {k: data[k] for k in data.files}
        except (OSError, ValueError, zipfile.BadZipFile) as e:
            raise MaskSourceError(f"masks_from: {path} cannot be read ({e}); delete the run and rerun it") from None
        masks = {}
        for name in (k for k in arrays if not k.endswith("::shape")):
            try:
                masks[name] = unpack_bits({"shape": arrays[f"{name}::shape"], "bits": arrays[name]})
            except (KeyError, ValueError) as e:
                raise MaskSourceError(f"masks_from: {path}: the mask of {name!r} is damaged ({e})") from None
            if not bool(masks[name].any()):
                raise MaskSourceError(f"masks_from: {path}: the mask of {name!r} keeps no weight at all; a lottery "
                                      "run never writes one, so the file is damaged: rerun the source run")
        out.append(masks)
    return out


def check_fits(levels: list[dict[str, torch.Tensor]], shapes: Mapping[str, tuple[int, ...]], source: object) -> None:
    """Every prunable tensor has a mask of its shape at every level, and no mask is left over."""
    for level, masks in enumerate(levels):
        missing = [n for n in shapes if n not in masks]
        if missing:
            raise MaskSourceError(f"masks_from: {source} has no mask for layer {missing[0]!r} at round {level} "
                                  f"(it has {sorted(masks)}); was it run with another model or parameter selection?")
        extra = [n for n in masks if n not in shapes]
        if extra:
            raise MaskSourceError(f"masks_from: {source} has a mask for layer {extra[0]!r}, which this network does "
                                  f"not prune (it prunes {sorted(shapes)})")
        for name, shape in shapes.items():
            if tuple(masks[name].shape) != tuple(shape):
                raise MaskSourceError(f"masks_from: {source}: layer {name!r} has shape {tuple(masks[name].shape)} "
                                      f"there but {tuple(shape)} here")

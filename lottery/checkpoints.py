"""Checkpoints that are whole or refused: written atomically in the run directory with a content hash beside
them, and checked (hash, loadable, same network, finite weights) before a run resumes from one.

Lightning's own writer streams into the target (or a temporary file elsewhere, then moves it across
filesystems), so a full disk or a kill leaves a truncated ``last.ckpt``; and a file whose bytes changed but
still loads would resume silently and end with ``val_loss nan``.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from torch import nn

from lottery.atomic import write_bytes, write_text
from lottery.config import ConfigError


def sidecar(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".sha256")


class AtomicCheckpointIO(TorchCheckpointIO):
    """``torch.save`` into memory, then a temporary sibling, fsync, rename; then ``<file>.sha256``."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options")
        buf = io.BytesIO()
        torch.save(checkpoint, buf)
        data = buf.getvalue()
        write_bytes(path, data)
        write_text(sidecar(path), hashlib.sha256(data).hexdigest() + "\n")

    def remove_checkpoint(self, path: Any) -> None:
        super().remove_checkpoint(path)
        sidecar(path).unlink(missing_ok=True)


def verify(path: Path, module: nn.Module) -> None:
    """Raise ``ConfigError`` (naming the file and what to do) unless ``path`` can resume ``module``."""

    def bad(why: str) -> ConfigError:
        return ConfigError(f"checkpoint {path} {why}; delete it (or pass --force) to start the run over")

    data = path.read_bytes()
    if not data:
        raise bad("is empty")
    stamp = sidecar(path)
    if stamp.is_file() and stamp.read_text().strip() != hashlib.sha256(data).hexdigest():
        raise bad("is corrupted (its content hash differs from the one written with it)")
    try:
        ckpt = torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001  (torch.load raises whatever the bytes provoke)
        raise bad(f"cannot be read (truncated, or not a checkpoint: {type(e).__name__})") from None
    state = ckpt.get("state_dict") if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise bad("is not a Lightning checkpoint (no state_dict)")
    expected = module.state_dict()
    for name, tensor in expected.items():
        if name not in state:
            raise bad(f"was written for another network (it has no {name!r})")
        if tuple(state[name].shape) != tuple(tensor.shape):
            raise bad(f"was written for another network ({name!r} has shape {tuple(state[name].shape)} there, "
                      f"{tuple(tensor.shape)} here)")
    extra = sorted(set(state) - set(expected))
    if extra:
        raise bad(f"was written for another network (it has {extra[0]!r}, which this one does not)")
    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad_count = int((~torch.isfinite(tensor)).sum())
            raise bad(f"holds non-finite values ({bad_count} in {name!r})")
    for key in ("epoch", "global_step"):
        value = ckpt.get(key)
        if not isinstance(value, int) or value < 0:
            raise bad(f"has no valid {key}")

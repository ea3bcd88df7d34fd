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
from lottery.config import Config, ConfigError
from lottery.safe_load import first_non_finite, load_weights_only, unreadable


def sidecar(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".sha256")


def accepted_hashes(path: Path) -> list[str]:
    """The content hashes the sidecar vouches for: while a new checkpoint is being written it lists the new
    one first and the old one second, so a kill between the two renames leaves a pair that still matches."""
    stamp = sidecar(path)
    return stamp.read_text().split() if stamp.is_file() else []


def trained(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """What training computed: the weights and the optimizers' state. (Callbacks may hold an infinity on
    purpose, such as ``ModelCheckpoint``'s ``kth_value`` or a best loss not yet seen.)"""
    return {k: checkpoint.get(k) for k in ("state_dict", "optimizer_states")}


class AtomicCheckpointIO(TorchCheckpointIO):
    """``torch.save`` into memory, then a temporary sibling, fsync, rename, with ``<file>.sha256`` beside it;
    read back with ``weights_only=True`` (a checkpoint can come from anyone). A checkpoint holding a
    non-finite value is not written: the run has diverged (its callback says so and stops it), and the last
    finite checkpoint stays, rather than being replaced by one nobody can resume."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options")
        if first_non_finite(trained(checkpoint)):
            return
        buf = io.BytesIO()
        torch.save(checkpoint, buf)
        data = buf.getvalue()
        new = hashlib.sha256(data).hexdigest()
        old = accepted_hashes(Path(path))[:1]
        write_text(sidecar(path), "\n".join([new, *old]) + "\n")  # vouches for both while the rename is pending
        write_bytes(path, data)
        write_text(sidecar(path), new + "\n")

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        return load_weights_only(Path(path))

    def remove_checkpoint(self, path: Any) -> None:
        super().remove_checkpoint(path)
        sidecar(path).unlink(missing_ok=True)


def verify(path: Path, module: nn.Module) -> dict[str, Any]:
    """Raise ``ConfigError`` (naming the file and what to do) unless ``path`` can resume ``module``; returns
    the checkpoint (read without running code)."""

    def bad(why: str) -> ConfigError:
        return ConfigError(f"checkpoint {path} {why}; delete it (or pass --force) to start the run over")

    data = path.read_bytes()
    if not data:
        raise bad("is empty")
    hashes = accepted_hashes(path)
    if hashes and hashlib.sha256(data).hexdigest() not in hashes:
        raise bad("is corrupted (its content hash differs from the one written with it)")
    try:
        ckpt = load_weights_only(data)
    except Exception as e:  # noqa: BLE001  (torch.load raises whatever the bytes provoke)
        raise bad(unreadable(e)) from None
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
    found = first_non_finite(trained(ckpt))  # NaN moments poison the first step as surely as NaN weights
    if found:
        raise bad(f"is damaged: it holds non-finite values ({found})")
    for key in ("epoch", "global_step"):
        value = ckpt.get(key)
        if not isinstance(value, int) or value < 0:
            raise bad(f"has no valid {key}")
    return ckpt


def resume_from(path: Path, cfg: Config, threads: int, module: nn.Module, lottery: Any) -> str | None:
    """The checkpoint to resume (None: start afresh), checked first: whole (content hash), loadable, written
    for this network, finite. A run's numbers depend on its thread count (float summation order), so a
    checkpoint written with another count is refused rather than silently mixed."""
    resume, stamp = path / "checkpoints" / "last.ckpt", path / "checkpoints" / "threads"
    if not cfg.train.checkpoint or not (resume.exists() or resume.is_symlink()):
        return None
    if not resume.is_file():
        raise ConfigError(f"checkpoint {resume} is not a file; delete it (or pass --force) to start the run over")
    ckpt = verify(resume, module)
    states = [v for k, v in (ckpt.get("callbacks") or {}).items() if str(k).startswith("LotteryTicket")]
    for state in states:
        try:
            lottery.check_state(state)
        except (ValueError, KeyError, TypeError) as e:
            raise ConfigError(f"checkpoint {resume} does not fit this run: {e}; delete it (or pass --force) to "
                              "start the run over") from None
    written = stamp.read_text().strip() if stamp.is_file() else str(threads)
    if written != str(threads):
        raise ConfigError(f"train.threads: {resume} was written with {written} threads; resuming with {threads} "
                          f"would change the run's numbers. Rerun with train.threads={written}, or --force to "
                          "start over")
    return str(resume)


def stamp_threads(path: Path, threads: int) -> None:
    write_text(path / "checkpoints" / "threads", f"{threads}\n")

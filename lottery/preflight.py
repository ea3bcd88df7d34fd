"""Pre-flight: every check that needs the machine, the data or the network, run once before a run writes
anything (the config layer checks only what the config itself says). Each raises ``ConfigError`` with one
line naming the field, the bad value and what to do."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch import nn

from lottery.config import Config, ConfigError
from lottery.data import DATASETS, TensorDataModule
from lottery.init.learned import check_fits
from lottery.models import build, resolve
from lottery.pruning import CRITERIA
from lottery.pruning.controls import control
from lottery.tracking import wandb_credentials


def check_config(cfg: Config) -> Config:
    """The config's names against the registries (dataset, model, criterion, control) and a learned start's
    file against the network; ``ConfigError`` with one line, else ``cfg``. ``prune.masks_from`` is read
    where the callback is built (a grid's controls name sources that do not exist yet)."""
    if cfg.data.dataset not in DATASETS:
        raise ConfigError(f"data.dataset: {cfg.data.dataset!r} is not valid; choose one of "
                          f"{', '.join(sorted(DATASETS))}")
    try:
        resolve(cfg.model.name)
        control(cfg.prune.control, cfg.prune.control_seed)
        spec = cfg.init_spec()
        if spec.generator is not None:
            info = DATASETS[cfg.data.dataset]
            net = build(cfg.model.name, info.shape, info.classes, **cfg.model.kwargs)
            check_fits(spec.source, spec.generator, {n: tuple(p.shape) for n, p in net.named_parameters()
                                                     if p.dim() >= 2})
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if cfg.prune.criterion not in CRITERIA:
        raise ConfigError(f"prune.criterion: {cfg.prune.criterion!r} is not valid; choose one of "
                          f"{', '.join(sorted(CRITERIA))}")
    return cfg


def check_device_count(accelerator: str, devices: int | str) -> None:
    count = int(devices) if isinstance(devices, int) or str(devices).isdigit() else None
    on_gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    available = torch.cuda.device_count() if on_gpu else (os.cpu_count() or 1)
    if count is not None and count > available:
        raise ConfigError(f"train.devices: {count} is not valid; this machine has {available} "
                          f"{'GPUs' if on_gpu else 'CPU cores'} (each device is one training process)")


def check_trainer(cfg: Config) -> None:
    """Lightning's own checks of accelerator, devices, strategy and precision, before anything is written;
    fields are added one at a time so that the error names the one Lightning refuses."""
    t, fields, logger = cfg.train, {}, logging.getLogger("pytorch_lightning")
    level = logger.level
    logger.setLevel(logging.WARNING)  # "GPU available: …" once per probe is noise
    try:
        for name in ("accelerator", "devices", "strategy", "precision"):
            fields[name] = getattr(t, name)
            if name == "devices":  # Lightning starts one process per CPU "device", however many cores exist
                check_device_count(t.accelerator, t.devices)
            try:
                pl.Trainer(**fields, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                           enable_model_summary=False)
            except Exception as e:  # noqa: BLE001  (Lightning raises several kinds for a bad setting)
                why = " ".join(str(e).split())[:300]
                raise ConfigError(f"train.{name}: {fields[name]!r} is not valid on this machine ({why})") from None
    finally:
        logger.setLevel(level)


def check_wandb(cfg: Config) -> None:
    """Online W&B logging needs credentials: without them wandb would stop the run at its first log (or ask
    on a terminal nobody watches), so say so before training."""
    w = cfg.wandb
    mode = w.mode or os.environ.get("WANDB_MODE") or "online"
    if not w.enabled or mode != "online" or wandb_credentials():
        return
    raise ConfigError("wandb.mode: online needs a W&B API key (WANDB_API_KEY or `wandb login`); log in, or set "
                      "wandb.mode=offline (sync later with `wandb sync`) or wandb.enabled=false")


def check_output_dir(cfg: Config) -> None:
    """The output folder can hold the run: no file in the way, writable, room for at least a little."""
    out = Path(cfg.output_dir)
    for folder in (out, *out.parents):
        if folder.is_symlink() and not folder.exists():  # dangling, or a loop (exists() is False for both)
            raise ConfigError(f"output_dir: {cfg.output_dir!r} is not valid; {folder} is a symbolic link to "
                              f"{os.readlink(folder)!r}, which does not resolve (missing target or a loop)")
        if folder.exists():
            break
    if not folder.is_dir():
        raise ConfigError(f"output_dir: {cfg.output_dir!r} is not valid; {folder} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=folder) as probe:  # a full disk fails here, not in a checkpoint
            probe.write(b"\0" * 65536)
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as e:
        raise ConfigError(f"output_dir: {cfg.output_dir!r} is not writable ({folder}: {e.strerror or e})") from None


def check_forward(cfg: Config, net: nn.Module, dm: TensorDataModule, members: int) -> None:
    """Two training images through the network (in eval mode: no BatchNorm statistics move), so a model
    whose shapes do not fit the data is named before training instead of failing in its first step."""
    x = dm.normalize(dm.tensors["train"][0][:2])
    classes = DATASETS[cfg.data.dataset].classes
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            out = net(x)
    except Exception as e:  # noqa: BLE001  (a user's module raises whatever its shapes provoke)
        why = " ".join(str(e).split())[:200]
        raise ConfigError(f"model.name: {cfg.model.name!r} does not fit {cfg.data.dataset} images of shape "
                          f"{tuple(x.shape[1:])} ({type(e).__name__}: {why}); check the model and its kwargs") from None
    finally:
        net.train(was_training)
    expected = (members, 2, classes) if members > 1 else (2, classes)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != expected:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ConfigError(f"model.name: {cfg.model.name!r} outputs {got} for a batch of 2 {cfg.data.dataset} images; "
                          f"a classifier of its {classes} classes outputs {expected}")


def check_rewind_step(cfg: Config, dm: TensorDataModule) -> None:
    """rewind=step snapshots inside the first round; a later step would leave nothing to rewind to."""
    steps = len(dm.train_dataloader()) * cfg.prune.epochs_per_round  # one step per call for rewind=step
    if cfg.prune.rewind == "step" and cfg.prune.rewind_step > steps:
        raise ConfigError(f"prune.rewind_step: {cfg.prune.rewind_step} is not valid; the snapshot must be taken "
                          f"within the first round (steps 0..{steps})")

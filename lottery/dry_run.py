"""A dry run before the real one: Lightning builds a Trainer of the config's settings, two training images go
through the network, the rewind step is checked against the round's length. Each raises ``ConfigError`` with
one line; nothing is written. (``lottery.preflight`` holds the checks that need no Trainer, so a config can be
checked and printed without importing Lightning.)"""

from __future__ import annotations

import logging
import os

import pytorch_lightning as pl
import torch
from torch import nn

from lottery.config import Config, ConfigError
from lottery.data import DATASETS, TensorDataModule


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
        for name in ("accelerator", "devices", "num_nodes", "strategy", "precision"):
            fields[name] = getattr(t, name)
            if name == "devices":  # Lightning starts one process per CPU "device", however many cores exist
                check_device_count(t.accelerator, t.devices)
            try:
                pl.Trainer(**fields, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                           enable_model_summary=False)
            except Exception as e:  # noqa: BLE001  (Lightning raises several kinds for a bad setting)
                why = " ".join(str(e).split())[:300]
                if "SLURM" in why:  # the job's allocation, not this field, disagrees with the run
                    raise ConfigError(f"the SLURM job does not fit train.devices × train.num_nodes ({why})") from None
                raise ConfigError(f"train.{name}: {fields[name]!r} is not valid on this machine ({why})") from None
    finally:
        logger.setLevel(level)


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

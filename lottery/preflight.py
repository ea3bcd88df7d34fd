"""Pre-flight: the checks that need the registries, a learned start's file, the output disk or the W&B
credentials, run once before a run writes anything (the config layer checks only what the config itself says;
``lottery.dry_run`` tries a Trainer and the network). Each raises ``ConfigError`` with one line naming the
field, the bad value and what to do. Nothing here imports Lightning: checking a config stays fast."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from lottery.config import Config, ConfigError
from lottery.data import DATASETS
from lottery.init.learned import check_fits
from lottery.models import build, resolve
from lottery.pruning import CRITERIA
from lottery.pruning.at_init import SCORERS
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
    if cfg.prune.at_init is not None and cfg.prune.at_init not in SCORERS:
        raise ConfigError(f"prune.at_init: {cfg.prune.at_init!r} is not valid; choose one of "
                          f"{', '.join(sorted(SCORERS))} (or null for IMP)")
    if cfg.prune.criterion not in CRITERIA:
        raise ConfigError(f"prune.criterion: {cfg.prune.criterion!r} is not valid; choose one of "
                          f"{', '.join(sorted(CRITERIA))}")
    return cfg


def check_wandb(cfg: Config) -> None:
    """Online W&B logging needs credentials: without them wandb would stop the run at its first log (or ask
    on a terminal nobody watches), so say so before training."""
    w = cfg.wandb
    mode = w.mode or os.environ.get("WANDB_MODE") or "online"
    if not w.enabled or mode != "online" or wandb_credentials():
        return
    raise ConfigError("wandb.mode: online needs a W&B API key (WANDB_API_KEY or `wandb login`); log in, or set "
                      "wandb.mode=offline (sync later with `wandb sync`) or wandb.enabled=false")


NAME_MAX = 255  # bytes in one file name on Linux, macOS and Windows file systems


def check_output_dir(cfg: Config) -> None:
    """The output folder can hold the run: no file in the way, writable, room for at least a little."""
    out = Path(cfg.output_dir)
    longest = max(out.parts, key=lambda part: len(part.encode()), default="")
    if len(longest.encode()) > NAME_MAX:
        raise ConfigError(f"output_dir: {cfg.output_dir[:60]!r}… is not valid; its part {longest[:30]!r}… is "
                          f"{len(longest.encode())} bytes long, over the {NAME_MAX} a file name may have")
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

"""Build the pieces of a run from its config: threads, data, network callback, classifier, loggers and the
Trainer. ``lottery.runner`` puts them together; scripts and benchmarks use them alone."""

from __future__ import annotations

import dataclasses
import fnmatch
import os
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint, TQDMProgressBar
from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.plugins.environments import SLURMEnvironment
from torch import nn

from lottery.atomic import write_csv, write_json
from lottery.callbacks import LotteryTicket
from lottery.checkpoints import AtomicCheckpointIO
from lottery.classifier import Classifier
from lottery.config import Config, to_dict
from lottery.curves import EvalCurve
from lottery.data import TensorDataModule
from lottery.pack import build_network
from lottery.rundir import run_dir
from lottery.tracking import wandb_logger

__all__ = ["build_network"]  # re-exported: a run's network is built in lottery.pack, beside the stacked one


def thread_count(threads: int) -> int:
    """The threads ``train.threads`` means here: 0 is every core, unless ``$OMP_NUM_THREADS`` says otherwise
    (several processes on one machine must each take 1 thread: two 2-thread torch processes on 2 cores run
    12–25× slower)."""
    if threads == 0:
        env = os.environ.get("OMP_NUM_THREADS", "")
        threads = int(env) if env.isdigit() and int(env) > 0 else (os.cpu_count() or 1)
    return threads


def configure_threads(threads: int) -> int:
    threads = thread_count(threads)
    torch.set_num_threads(threads)
    return threads


def skip_nvml_probe(accelerator: str) -> None:
    """Lightning sets ``PYTORCH_NVML_BASED_CUDA_CHECK=1`` at import, which makes every ``Adam.step`` probe
    NVML through ctypes (``torch.cuda.is_available`` ≈ 0.07 ms, ≈ 5 % of a LeNet step on these CPUs). On a
    CPU run nothing forks with CUDA, so the plain CUDA-runtime check (≈ 1 µs) is safe."""
    if accelerator == "cpu":
        os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = "0"


def build_datamodule(cfg: Config, seed: int | list[int] | None = None) -> TensorDataModule:
    """``seed``: the batch-order seed(s); default the config's (a list: one per stacked member)."""
    d = cfg.data
    return TensorDataModule(
        d.dataset, root=d.root, batch_size=d.batch_size, eval_batch_size=d.eval_batch_size, val_size=d.val_size,
        split_seed=d.split_seed, seed=cfg.seed if seed is None else seed, augment=d.augment,
        train_subset=d.train_subset, test_subset=d.test_subset, download=d.download,
        steps_per_call=steps_per_call(cfg),
    )


def module_layer_rates(cfg: Config, net: nn.Module) -> dict[str, float]:
    """``prune.layer_rates`` as the classifier names its parameters (``model.`` prefix added), each checked."""
    rates = {}
    for pattern, rate in cfg.prune.layer_rates.items():
        full = pattern if pattern.startswith("model.") else f"model.{pattern}"
        if not any(fnmatch.fnmatchcase(f"model.{n}", full) for n, _ in net.named_parameters()):
            raise ValueError(f"prune.layer_rates: {pattern!r} matches no parameter of {cfg.model.name}")
        rates[full] = rate
    return rates


def build_lottery_callback(cfg: Config, net: nn.Module, members: list[Config] | None = None) -> LotteryTicket:
    """The IMP callback of ``cfg``; ``members``: the configs of stacked members (differing only in start and
    in ``prune.masks_from``). Every round's masks are kept in the run directory's ``masks/``."""
    cfgs = members or [cfg]
    prune = [dataclasses.replace(c.prune, layer_rates=module_layer_rates(c, net)) for c in cfgs]
    # init=None: θ0 comes from the spec attached to the network by ``build_network``, so parameters are named
    # as in the bare network ("0.weight") and ``initialize(net, spec)`` alone reproduces every w0.
    return LotteryTicket(prune if members else prune[0], init=None,
                         init_copy=not all(c.init_spec().regenerable for c in cfgs),
                         save_masks=[run_dir(c) / "masks" for c in cfgs])


def build_classifier(cfg: Config, dm: TensorDataModule, net: nn.Module) -> Classifier:
    o = cfg.optim
    return Classifier(
        net, optimizer=o.name, lr=o.lr, momentum=o.momentum, nesterov=o.nesterov, weight_decay=o.weight_decay,
        milestones=o.milestones, gamma=o.gamma, warmup_steps=o.warmup_steps, fused=o.fused,
        eval_names=[n for n in ("val", "test") if n in dm.tensors], steps_per_epoch=len(dm.train_dataloader()),
    )


class RoundWriter(pl.Callback):
    """Rewrites every cell's ``rounds.csv`` / ``rounds.json`` atomically whenever the IMP callback finishes a
    round; ``cells``: (run directory, identity columns) per cell, one per stacked member."""

    def __init__(self, cells: list[tuple[Path, dict[str, Any]]], lottery: LotteryTicket) -> None:
        self.cells, self.lottery, self.written = cells, lottery, -1

    def _write(self) -> None:
        if len(self.lottery.history) == self.written:
            return
        for m, (path, extra) in enumerate(self.cells):
            rows = [{**extra, **r} for r in self.lottery.records(m if self.lottery.members else None)]
            write_json(path / "rounds.json", rows)
            write_csv(path / "rounds.csv", rows)
        self.written = len(self.lottery.history)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero:  # one writer under DDP
            self._write()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero:
            self._write()


def build_loggers(cfg: Config, path: Path) -> list:
    out: list = [CSVLogger(save_dir=str(path), name="logs")]
    if cfg.wandb.enabled:
        out.append(wandb_logger(cfg, path, to_dict(cfg)))
    return out


def build_trainer(cfg: Config, path: Path, callbacks: list[pl.Callback], logger: list) -> pl.Trainer:

    t = cfg.train
    if t.checkpoint:  # the latest epoch only, overwritten; at epoch ends even when evaluations count steps
        callbacks.append(ModelCheckpoint(dirpath=str(path / "checkpoints"), filename="last", save_top_k=1,
                                         enable_version_counter=False,
                                         save_on_train_epoch_end=True if t.eval_every_steps else None))
    if t.progress_bar:
        callbacks.append(TQDMProgressBar(refresh_rate=20))

    # under SLURM, a requeued job resumes from the run's own last.ckpt (the grid's launcher, submitit, or the
    # user's --requeue): Lightning's auto-requeue would save and restore an hpc_ckpt of its own beside it
    slurm = [SLURMEnvironment(auto_requeue=False)] if SLURMEnvironment.detect() else []
    return pl.Trainer(
        plugins=[AtomicCheckpointIO(), *slurm],
        max_epochs=-1, accelerator=t.accelerator, devices=t.devices, strategy=t.strategy, precision=t.precision,
        num_nodes=t.num_nodes,
        deterministic=t.deterministic, num_sanity_val_steps=0, **evaluation_schedule(cfg),
        callbacks=callbacks, logger=logger, enable_checkpointing=t.checkpoint, enable_progress_bar=t.progress_bar,
        enable_model_summary=t.progress_bar, default_root_dir=str(path),
    )


def curve_recorder(cfg: Config, lottery: LotteryTicket) -> EvalCurve | None:
    """With evaluations counted in steps: ~50 points per round (every 1,000 of F&C's 50,000 steps)."""
    every, per_round = cfg.train.eval_every_steps, cfg.prune.steps_per_round
    if every is None:
        return None
    return EvalCurve(lottery, every=every * max(1, (per_round or every) // 50 // every))


def evaluation_schedule(cfg: Config) -> dict[str, Any]:
    """Lightning's validation schedule: every ``eval_every`` epochs, or every ``eval_every_steps`` optimizer
    steps counted across epochs (``val_check_interval`` counts calls, which take ``steps_per_call`` steps)."""
    t = cfg.train
    if t.eval_every_steps is None:
        return {"check_val_every_n_epoch": t.eval_every}
    return {"check_val_every_n_epoch": None, "val_check_interval": t.eval_every_steps // steps_per_call(cfg)}


def steps_per_call(cfg: Config) -> int:
    # the rewind=step snapshot is taken after a call: one step per call makes it land on rewind_step exactly;
    # DDP synchronises gradients once per wrapped forward, so it takes one step per call too
    one = cfg.prune.rewind == "step" or cfg.train.strategy.startswith("ddp")
    return 1 if one else cfg.train.steps_per_call

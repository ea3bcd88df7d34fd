"""What the survivors go back to after a round: θ0 regenerated (``init``, through the control's transform),
the snapshot of step k (``step``), only the learning-rate schedule (``lr``), or nothing (``none``).
Optimizer state is cleared at each rewind unless told not to; the LR schedule restarts unless ``none``."""

from __future__ import annotations

from typing import Any, ClassVar

import pytorch_lightning as pl
import torch
from torch import nn


class Rewind:
    """The base: keeps the weights (``none``); the optimizer and LR-schedule resets are common to all."""

    kind: ClassVar[str] = "none"

    def __init__(self, step: int, reset_optimizer: bool, reset_lr: bool) -> None:
        self.step, self.reset_optimizer, self.reset_lr = step, reset_optimizer, reset_lr
        # buffers (BatchNorm running statistics, counters) at fit start: a rewind to init restores them too;
        # a few values per channel, not weights, so keeping them costs next to nothing
        self.buffers0: dict[str, torch.Tensor] = {}
        self.snapshot: dict[str, torch.Tensor] | None = None  # parameters and buffers at ``step`` (rewind=step)
        self.lr_start: list[dict[str, Any]] | None = None
        self.pending_lr_reset = False

    def start(self, module: nn.Module) -> None:
        self.buffers0 = {n: b.detach().clone() for n, b in module.named_buffers()}

    def at_step(self, module: nn.Module, step: int) -> None:
        """Called after every optimizer step (and with 0 at fit start)."""

    @torch.no_grad()
    def weights(self, module: nn.Module, ticket: Any) -> None:
        """Put the weights (and buffers) back; the base keeps them."""

    @torch.no_grad()
    def __call__(self, trainer: pl.Trainer, module: nn.Module, ticket: Any) -> None:
        self.weights(module, ticket)
        if self.reset_optimizer:
            for opt in trainer.optimizers:
                opt.state.clear()
        self.pending_lr_reset = self.reset_lr

    def remember_lr(self, trainer: pl.Trainer) -> None:
        if self.lr_start is None:
            self.lr_start = [{"lrs": [g["lr"] for g in opt.param_groups]} for opt in trainer.optimizers]
            for entry, config in zip(self.lr_start, trainer.lr_scheduler_configs, strict=False):
                entry["scheduler"] = config.scheduler.state_dict()

    def reset_lr_if_pending(self, trainer: pl.Trainer) -> None:
        if not self.pending_lr_reset:
            return
        for opt, entry in zip(trainer.optimizers, self.lr_start or [], strict=False):
            for group, lr in zip(opt.param_groups, entry["lrs"], strict=True):
                group["lr"] = lr
        for config, entry in zip(trainer.lr_scheduler_configs, self.lr_start or [], strict=False):
            if "scheduler" in entry:
                config.scheduler.load_state_dict(entry["scheduler"])
        self.pending_lr_reset = False


class ToInit(Rewind):
    """θ0, regenerated from the init spec (zero storage); pruned tensors go through the control (reinit,
    signed constant); buffers return to their values at fit start."""

    kind = "init"

    @torch.no_grad()
    def weights(self, module: nn.Module, ticket: Any) -> None:
        replaying, stacked = ticket.masks_from is not None, bool(ticket.members)
        for name, p in module.named_parameters():
            if name in ticket.masks:
                p.copy_(ticket.control.rewound(lambda shift, name=name: ticket.initial(module, name, shift),
                                               ticket.round, replaying, stacked))
            else:
                p.copy_(ticket.initial(module, name))
        for name, b in module.named_buffers():
            if name in self.buffers0:  # running statistics go back with the weights
                b.copy_(self.buffers0[name])


class ToStep(Rewind):
    """The parameters and buffers of step ``step`` of the first round (stored: the one mode that copies)."""

    kind = "step"

    def at_step(self, module: nn.Module, step: int) -> None:
        if self.snapshot is None and step >= self.step:
            self.snapshot = {n: p.detach().clone() for n, p in module.named_parameters()}
            self.snapshot.update({n: b.detach().clone() for n, b in module.named_buffers()})

    @torch.no_grad()
    def weights(self, module: nn.Module, ticket: Any) -> None:
        if self.snapshot is None:
            raise ValueError(f"rewind_step: {self.step} is not valid; round {ticket.round + 1} ended before that step, "
                             "so there is no snapshot to rewind to (use a step within the first round)")
        for name, p in module.named_parameters():
            p.copy_(self.snapshot[name])
        for name, b in module.named_buffers():
            if name in self.snapshot:
                b.copy_(self.snapshot[name])


class LearningRate(Rewind):
    """Learning-rate rewinding (Renda et al. 2020): the weights stay, the LR schedule restarts."""

    kind = "lr"


REWINDS: dict[str, type[Rewind]] = {r.kind: r for r in (ToInit, ToStep, LearningRate, Rewind)}


def rewind(kind: str, step: int, reset_optimizer: bool, reset_lr: bool) -> Rewind:
    return REWINDS[kind](step, reset_optimizer, reset_lr)

"""Iterative magnitude pruning (the lottery-ticket procedure) as one Lightning callback.

Add it to your own ``Trainer``: one ``fit`` then runs every round: train, prune, rewind, repeat. Initial
weights are regenerated from the init spec (``lottery.init``), never copied, so an ``init`` rewind stores
zero bytes of θ0; masks are bool (1 byte per prunable weight; 1 bit in checkpoints). What the next masks
are (``lottery.pruning.next_masks``), which control runs (``lottery.pruning.controls``) and what a rewind
restores (``lottery.callbacks.rewind``) are small strategies; this file holds the Lightning hooks.

Stacked members (``lottery.models.stacked``: K networks along dim 0 of every parameter) are K independent
tickets: each member has its own masks, w0 (from its own spec), best epoch (monitor ``val_loss/m3``) and
record (``history[r]["members"][m]``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from lottery.callbacks.at_init import attach
from lottery.callbacks.divergence import diverged_fit
from lottery.callbacks.plan import plan
from lottery.callbacks.ranks import check_ranks_agree
from lottery.callbacks.records import Best, flat_metrics, member_history, round_line, round_record, say, update_bests
from lottery.callbacks.schedule import fit_length
from lottery.callbacks.select import ParamFilter, output_tensor, rates_of, select_parameters
from lottery.callbacks.state import check_state, held_bytes, load_state, save_state
from lottery.callbacks.theta0 import Theta0
from lottery.config import ConfigError, PruneConfig
from lottery.init import InitSpec
from lottery.pruning import MaskedMultiply
from lottery.pruning.at_init import collapsed
from lottery.pruning.levels import MaskSourceError, check_fits, save_level
from lottery.pruning.next_masks import PruneAtInit
from lottery.pruning.prunable import Prunable

PathLike = str | os.PathLike


class LotteryTicket(pl.Callback):
    """Lottery-ticket IMP for any ``LightningModule``.

    Args:
        prune: the schedule and what to prune by: ``lottery.config.PruneConfig``, the ``prune:`` section of
            the CLI's config, same fields, same defaults (20 rounds of 5 epochs, 20 % per round, output
            layer 10 %, rewind to init). A sequence gives one per stacked member (they may differ only in
            ``prune_seed`` and ``masks_from``).
        init: the start to (re)initialise the module with at fit start. ``None``: use the spec already
            attached by ``lottery.init.initialize``, or ``InitSpec()`` if the module has none.
        init_copy: keep one explicit stored copy of the module's current weights as θ0 instead (for
            weights that did not come from a spec, e.g. ``source="torch"``). Costs a full copy; warns.
        parameters: names (globs allowed) or a filter ``(name, module, param) -> bool`` of the tensors to
            prune. Default: the weights of Linear and Conv layers (not biases, not norm layers).
        output_layer: name (glob) of the output layer's tensor that ``prune.output_rate`` applies to.
            Default: the module's ``lottery_output_layer`` attribute, else the last prunable tensor.
        save_masks: a folder (one per stacked member) where the masks of every round are written as
            ``round-NN.npz``, bit-packed, when the round starts; what ``prune.masks_from`` reads.
        verbose: one line per round (``round 3/19 · 51.3 % remaining · val 97.90 % · test 97.85 %``).
    """

    def __init__(
        self,
        prune: PruneConfig | Sequence[PruneConfig] | None = None,
        *,
        init: InitSpec | None = None,
        init_copy: bool = False,
        parameters: Sequence[str] | ParamFilter | None = None,
        output_layer: str | None = None,
        save_masks: PathLike | Sequence[PathLike] | None = None,
        verbose: bool = True,
    ) -> None:
        self.theta0 = Theta0()  # where w0 comes from: the module's spec (regenerated) or a stored copy
        strategies = plan(PruneConfig() if prune is None else prune, self.theta0.seed)
        self.prune, self.control, self.next_masks = strategies.members[0], strategies.control, strategies.next_masks
        self.rewind, self.rounds, self.masks_from = strategies.rewind, strategies.rounds, strategies.masks_from
        self._levels = strategies.levels
        self.criterion = self.control.criterion(self.prune.criterion)
        self.epochs_per_round = None if self.prune.steps_per_round is not None else self.prune.epochs_per_round
        self.steps_per_round = self.prune.steps_per_round
        if init is not None and not isinstance(init, InitSpec):
            raise ValueError(f"init: expected an InitSpec, got {type(init).__name__}")
        self.init, self.init_copy, self.parameters, self.output_layer = init, init_copy, parameters, output_layer
        self.save_masks = None if save_masks is None else (
            [save_masks] if isinstance(save_masks, (str, os.PathLike)) else list(save_masks))
        self.verbose = verbose

        self.history: list[dict[str, Any]] = []  # one plain record per finished round
        self.round = 0
        self.done = False
        # set when loss or weights go non-finite: training stops there, nothing more is pruned
        self.diverged: dict[str, Any] | None = None
        self.tensors: Prunable | None = None  # the prunable tensors and their masks, found at fit start
        self._round_start = (0, 0)  # (epoch, global step)
        self._best: dict[int | None, Best] = {}  # per member (None: an unstacked network)
        self._end_at_validation = False  # a step-counted round has reached its length; its evaluation is next
        self._loaded: dict[str, Any] | None = None
        self._hooks: list[Any] = []
        self._hot: MaskedMultiply | None = None

    # ------------------------------------------------------------------ what the ticket holds
    @property
    def masks(self) -> dict[str, torch.Tensor]:
        return self.tensors.masks if self.tensors is not None else {}

    @property
    def members(self) -> int | None:
        return self.tensors.members if self.tensors is not None else None

    def planned_rounds(self) -> int:
        if self.rounds is not None:
            return self.rounds
        return self.tensors.planned_rounds(self.prune.target_density)

    # ------------------------------------------------------------------ set-up
    def validate(self, pl_module: nn.Module) -> None:
        """Every check that needs the module (what to prune, stacked members, ``masks_from`` fitting its
        layers); ``fit`` runs it at its start, and a runner can call it before writing anything."""
        names = select_parameters(pl_module, self.parameters)
        rates, own = rates_of(pl_module, names, output_tensor(pl_module, names, self.output_layer), self.prune)
        all_params = dict(pl_module.named_parameters())
        self.tensors = Prunable({n: all_params[n] for n in names}, rates, own)
        if self.members and self.prune.at_init is not None:
            raise ValueError("prune.at_init: not for stacked members; train each start alone (members_per_process 1)")
        if self.members and self.prune.sleeping_check is not None:
            raise ValueError("prune.sleeping_check: not supported for stacked members; train the start alone")
        self.planned_rounds()  # a target density the rates never reach is refused before anything is written
        for paths, what in ((self.masks_from, "prune.masks_from"), (self.save_masks, "save_masks")):
            if paths is not None and len(paths) != (self.members or 1):
                raise ValueError(f"{what}: {len(paths)} folders for {self.members or 1} member network(s); "
                                 "give one per stacked member")
        for src, levels in zip(self.masks_from or [], self._levels or [], strict=True):
            try:
                check_fits(levels, self.tensors.shapes(), src)
            except MaskSourceError as e:
                raise ConfigError(f"prune.{e}") from None

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._hot = None
        self.validate(pl_module)
        if isinstance(self.next_masks, PruneAtInit):
            attach(self.next_masks, trainer, pl_module, self.prune.at_init_batches, lambda: self.rewind.buffers0)
        if self._loaded is not None:
            self._restore(pl_module)
        else:
            self._start(pl_module)
        self._save_level(trainer)
        fit_length(trainer, self.planned_rounds(), self.epochs_per_round, self.steps_per_round)
        self._apply()

    def _start(self, pl_module: nn.Module) -> None:
        self.theta0.begin(pl_module, self.init, self.init_copy)
        self.tensors.reset()
        self.rewind.start(pl_module)
        if self._levels is not None:
            shift = self.control.start_shift(replaying=True)
            if shift:  # this run's w0 *is* the other seed's: rewinds and sleeping use it
                self.theta0.move_seed(shift, f"prune.control={self.control.name!r} with masks_from")
            self._next_level(pl_module, 0)
            if self.rewind.kind == "init":  # the control's weights (signed constant) from the first level on
                self.rewind.weights(pl_module, self)
        self.rewind.at_step(pl_module, 0)

    def _restore(self, pl_module: nn.Module) -> None:
        state, self._loaded = self._loaded, None
        self.theta0.restore(pl_module, state["spec"], self.init_copy,
                            self.control.start_shift(replaying=self._levels is not None))
        load_state(self, state)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._hot = None
        for opt in trainer.optimizers:
            self._hooks.append(opt.register_step_post_hook(lambda *_: self._apply()))
        self.rewind.remember_lr(trainer)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        for handle in self._hooks:
            handle.remove()
        self._hooks.clear()

    # ------------------------------------------------------------------ hot path
    def _apply(self) -> None:
        if self._hot is None:  # planned once per round: this runs after every optimizer step
            names = [n for n, m in self.masks.items() if not bool(m.all())]  # all-ones masks are skipped
            self._hot = MaskedMultiply([self.tensors.params[n].data for n in names], [self.masks[n] for n in names])
        self._hot()

    def initial(self, pl_module: nn.Module, name: str, seed_shift: int = 0) -> torch.Tensor:
        """θ0 of a parameter of ``pl_module``: regenerated (or from the explicit copy)."""
        return self.theta0(name, seed_shift)

    # ------------------------------------------------------------------ round bookkeeping
    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.rewind.reset_lr_if_pending(trainer)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        self.rewind.at_step(pl_module, trainer.global_step)
        if self.steps_per_round and trainer.global_step - self._round_start[1] >= self.steps_per_round:
            if trainer.check_val_every_n_epoch is None and not self._end_at_validation:
                # validation counted in steps runs right after this batch: the round's last evaluation belongs
                # to it (its early-stopping candidate, its end-of-round metrics), so the round ends there
                self._end_at_validation = True
                return
            if not self._end_at_validation:
                self._end_round(trainer, pl_module)
                self.rewind.reset_lr_if_pending(trainer)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or self._diverging(trainer):
            return
        # the round's clock: epochs and steps it has trained (counts, from its start)
        update_bests(self._best, trainer.callback_metrics, self.prune, self.tensors.ids(),
                     trainer.current_epoch - self._round_start[0] + 1, trainer.global_step - self._round_start[1])
        # End the round here, not in on_train_epoch_end: ModelCheckpoint saves in on_validation_end (after
        # this hook, since Lightning runs checkpoint callbacks last), so its checkpoint holds the new masks.
        if trainer.is_last_batch and self._round_complete(trainer):
            self._end_round(trainer, pl_module)
        if self._end_at_validation:  # a round counted in steps, whose last step this evaluation followed
            self._end_at_validation = False
            self._end_round(trainer, pl_module)
            self.rewind.reset_lr_if_pending(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._diverging(trainer):
            return
        if self._round_complete(trainer):  # no epoch-end validation ran this epoch
            self._end_round(trainer, pl_module)

    def records(self, member: int | None = None) -> list[dict[str, Any]]:
        """The finished rounds as an unstacked run records them: stacked member ``member``'s own (``None``:
        the network's history as it is)."""
        return member_history(self.history, member)

    def _round_complete(self, trainer: pl.Trainer) -> bool:
        return bool(self.epochs_per_round) and trainer.current_epoch + 1 - self._round_start[0] >= self.epochs_per_round

    def _diverging(self, trainer: pl.Trainer) -> bool:
        """Stop the fit (and record when and what) once a loss or a prunable weight is non-finite."""
        self.diverged = self.diverged or diverged_fit(trainer, self.tensors.params, self.members, self.round)
        if self.diverged is not None:
            trainer.should_stop = True
        return self.diverged is not None

    def _end_round(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.done or self._diverging(trainer):
            return
        record = round_record(self.tensors, self.prune, trainer, pl_module, self.round, self._best,
                              self.theta0 if self.theta0.available else None)
        if self.prune.at_init is not None:  # SynFlow's point: at which density a method disconnects the network
            record["collapsed_layers"] = len(collapsed(self.masks))
        self.history.append(record)
        for logger in trainer.loggers:
            logger.log_metrics(flat_metrics(record), step=trainer.global_step)
        total = self.planned_rounds()
        if self.verbose:
            say(round_line(record, self.round, total, self.members))
        if self.round + 1 >= total:
            self.done = True
            trainer.should_stop = True
            return
        self._next_level(pl_module, self.round + 1)
        self.rewind(trainer, pl_module, self)
        self._apply()
        self.round += 1
        self._save_level(trainer)
        self._round_start = (trainer.current_epoch + 1 if self.epochs_per_round else trainer.current_epoch,
                             trainer.global_step)
        self._best = {}

    # ------------------------------------------------------------------ masks
    def _next_level(self, pl_module: nn.Module, level: int) -> None:
        self.next_masks(self.tensors, level, lambda name: self.initial(pl_module, name))
        self._hot = None  # masks that were all ones may not be any more
        if self.prune.at_init is not None and (cut := collapsed(self.masks)):  # said before the level trains
            say(f"level {level}: {', '.join(cut)} left without weights (layer collapse): the network is cut there")

    def _save_level(self, trainer: pl.Trainer) -> None:
        """This round's masks, the same on every rank, one file per ``save_masks`` folder (rank 0 writes)."""
        check_ranks_agree(trainer, self.masks, self.round)
        for member, folder in enumerate((self.save_masks or []) if trainer.is_global_zero else []):
            save_level(folder, self.round, {n: self.tensors.slice(m, member if self.members else None)
                                            for n, m in self.masks.items()})

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        return save_state(self)

    def check_state(self, state: dict[str, Any]) -> None:
        """``ValueError`` unless a checkpoint's state fits this schedule (see ``state.check_state``)."""
        check_state(state, self.rounds)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict.get("version") != 1:
            raise ValueError(f"LotteryTicket checkpoint state version {state_dict.get('version')!r} is not 1")
        self._loaded = state_dict

    def state_bytes(self) -> dict[str, int]:
        """Bytes this callback holds for lottery state: masks, θ0 copies, snapshots (``state.held_bytes``)."""
        return held_bytes(self)


__all__ = ["LotteryTicket"]

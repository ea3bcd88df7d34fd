"""Iterative magnitude pruning (the lottery-ticket procedure) as one Lightning callback.

Add it to your own ``Trainer``: one ``fit`` then runs every round: train, prune, rewind, repeat. Initial
weights are regenerated from the init spec (``lottery.init``), never copied, so an ``init`` rewind stores
zero bytes of θ0; masks are bool (1 byte per prunable weight; 1 bit in checkpoints).

Stacked members (``lottery.models.stacked``: K networks along dim 0 of every parameter) are K independent
tickets: each member has its own masks, w0 (from its own spec), best epoch (monitor ``val_loss/m3``) and
record (``history[r]["members"][m]``).
"""

from __future__ import annotations

import fnmatch
import logging
import os
import re
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_only, rank_zero_warn
from torch import nn

from lottery import checks
from lottery.callbacks.divergence import non_finite_members, non_finite_metrics
from lottery.callbacks.sleeping import accuracy, sleeping_fractions
from lottery.generators import stream_key
from lottery.init import InitSpec, initial_value, initialize, members_of
from lottery.init.apply import SPEC_ATTR, check_regenerable
from lottery.pruning import (
    CRITERIA,
    MaskedMultiply,
    keep_top,
    pack_bits,
    score_key,
    select_global,
    select_layerwise,
    unpack_bits,
)
from lottery.pruning.levels import check_fits, count_levels, load_levels, save_level

log = logging.getLogger("lottery")

REWINDS = ("init", "step", "lr", "none")
SCOPES = ("layer", "global")
CONTROLS = (None, "reinit", "random_prune", "signed_constant")
PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
ParamFilter = Callable[[str, nn.Module, nn.Parameter], bool]
PathLike = str | os.PathLike
Specs = InitSpec | tuple[InitSpec, ...]


def shifted(spec: Specs, shift: int) -> Specs:
    """The start(s) with every seed moved by ``shift``: the random re-initialisation control's w0."""
    if isinstance(spec, InitSpec):
        return spec.replace(seed=(spec.seed + shift) % 2**63)
    return tuple(s.replace(seed=(s.seed + shift) % 2**63) for s in spec)


@rank_zero_only
def say(message: str) -> None:
    """A log line on rank 0: through the ``lottery`` logger when the application configured logging that
    lets INFO through (the CLIs print it above the progress bars), else straight to stderr, so it shows in
    any Trainer, also after a user's ``logging.basicConfig()`` (root at WARNING)."""
    if log.hasHandlers() and log.isEnabledFor(logging.INFO):
        log.info(message)
    else:
        print(message, file=sys.stderr, flush=True)


def _paths(value: PathLike | Sequence[PathLike] | None) -> list[PathLike] | None:
    if value is None:
        return None
    return [value] if isinstance(value, (str, os.PathLike)) else list(value)


def _rate(field: str, value: object) -> float:
    checks.fraction(field, value)
    return float(value)  # type: ignore[arg-type]


def _positive_int(field: str, value: int | None) -> None:
    checks.at_least(field, value, 1, "an integer")


def _is_eval_metric(key: str) -> bool:
    return key.split("_")[0].split("/")[0] in ("val", "test")


_MEMBER_KEY = re.compile(r"/m\d+$")


def member_metrics(metrics: Mapping[str, Any], member: int | None) -> dict[str, float]:
    """The eval metrics of one stacked member (logged as ``val_acc/m3``), under their plain names; for an
    unstacked network (``member=None``) the eval metrics without a member suffix."""
    if member is None:
        return {k: float(v) for k, v in metrics.items() if _is_eval_metric(k) and not _MEMBER_KEY.search(k)}
    suffix = f"/m{member}"
    return {k.removesuffix(suffix): float(v) for k, v in metrics.items() if _is_eval_metric(k) and k.endswith(suffix)}


class LotteryTicket(pl.Callback):
    """Lottery-ticket IMP for any ``LightningModule``.

    Args:
        init: the start to (re)initialise the module with at fit start. ``None``: use the spec already
            attached by ``lottery.init.initialize``, or ``InitSpec()`` if the module has none.
        init_copy: keep one explicit stored copy of the module's current weights as θ0 instead (for
            weights that did not come from a spec, e.g. ``source="torch"``). Costs a full copy; warns.
        parameters: names (globs allowed) or a filter ``(name, module, param) -> bool`` of the tensors to
            prune. Default: the weights of Linear and Conv layers (not biases, not norm layers).
        rate: fraction of the surviving weights pruned per round.
        layer_rates: per-name (glob) overrides of ``rate``, e.g. ``{"net.4.weight": 0.1}``.
        output_rate: rate of the output layer (Frankle & Carbin: 0.1).
        output_layer: name (glob) of the output layer's tensor that ``output_rate`` applies to. Default:
            the module's ``lottery_output_layer`` attribute if it has one, else the last prunable tensor in
            registration order (``net.4.weight`` of a Sequential MLP).
        scope: ``layer`` (each tensor its own rate) or ``global`` (one magnitude threshold across tensors
            that have no override).
        epochs_per_round / steps_per_round: length of a round (give one).
        rounds: number of training rounds including the dense one; or ``target_density``: run rounds until
            the prunable weights' density reaches it.
        criterion: ``magnitude`` (|w|), ``movement`` (|w − w0|), ``magnitude_increase``, ``large_init``,
            ``random``; see ``lottery.pruning.CRITERIA``.
        rewind: ``init`` (regenerate θ0, zero storage), ``step`` (snapshot at ``rewind_step``, stored only in
            this mode), ``lr`` (keep weights, replay the LR schedule), ``none`` (fine-tune).
        reset_optimizer: clear optimizer state (Adam moments, momentum) at every rewind.
        reset_lr_schedule: restore the LR scheduler to its start at every rewind (default: not for ``none``).
        control: ``reinit`` (kept weights re-drawn from a new seed), ``random_prune`` (same per-layer
            sparsity, random mask), ``signed_constant`` (± layer std with the sign of θ0). Without
            ``masks_from`` the control derives its own masks round by round; with it, see there.
        control_seed: seed shift of ``reinit``: w0 comes from the start's seed + ``control_seed`` (without
            ``masks_from``: + ``control_seed`` + round, a new draw every round).
        masks_from: a finished run's directory (or its ``masks/`` folder; one per stacked member) whose
            per-round masks (``masks/round-*.npz``) this run trains with, each level once, rewinding between
            levels (Frankle & Carbin's controls of a ticket): ``control=None``: the ticket's own w0 (the
            source's rounds, reproduced); ``reinit``: w0 of seed + ``control_seed``, the same at every level;
            ``random_prune``: a random mask with the source's per-layer counts at every level (seeded by
            ``prune_seed`` and the start's seed); ``signed_constant``: ± layer std with the sign of w0.
            ``rounds`` defaults to the source's number of levels.
        save_masks: a folder (one per stacked member) where the masks of every round are written as
            ``round-NN.npz``, bit-packed, when the round starts; what ``masks_from`` reads.
        prune_seed: seed of the ``random`` criterion's scores; a sequence gives each stacked member its own.
        monitor / monitor_mode: the validation metric whose best value per round and its epoch are kept
            (Frankle & Carbin's early-stopping iteration: minimum ``val_loss``, the default).
        sleeping_thresholds / sleeping_relative: τ for the sleeping fractions, absolute and × std(θ0).
        sleeping_check: if set, τ at which the sleeping survivors are zeroed and validation accuracy re-measured.
    """

    def __init__(
        self,
        *,
        init: InitSpec | None = None,
        init_copy: bool = False,
        parameters: Sequence[str] | ParamFilter | None = None,
        rate: float = 0.2,
        layer_rates: Mapping[str, float] | None = None,
        output_rate: float | None = None,
        output_layer: str | None = None,
        scope: str = "layer",
        epochs_per_round: int | None = 1,
        steps_per_round: int | None = None,
        rounds: int | None = None,
        target_density: float | None = None,
        criterion: str = "magnitude",
        rewind: str = "init",
        rewind_step: int = 0,
        reset_optimizer: bool = True,
        reset_lr_schedule: bool | None = None,
        control: str | None = None,
        control_seed: int = 1_000_003,
        prune_seed: int | Sequence[int] = 0,
        monitor: str = "val_loss",
        monitor_mode: str = "min",
        sleeping_thresholds: Sequence[float] = (1e-5, 1e-4, 1e-3),
        sleeping_relative: Sequence[float] = (0.01, 0.1),
        sleeping_check: float | None = None,
        masks_from: PathLike | Sequence[PathLike] | None = None,
        save_masks: PathLike | Sequence[PathLike] | None = None,
        verbose: bool = True,
    ) -> None:
        self.rate = _rate("rate", rate)
        self.layer_rates = {k: _rate(f"layer_rates[{k!r}]", v) for k, v in (layer_rates or {}).items()}
        self.output_rate = None if output_rate is None else _rate("output_rate", output_rate)
        checks.choice("scope", scope, SCOPES)
        checks.choice("criterion", criterion, sorted(CRITERIA))
        checks.choice("rewind", rewind, REWINDS)
        checks.choice("control", control, CONTROLS)
        checks.choice("monitor_mode", monitor_mode, ("max", "min"))
        if steps_per_round is not None:
            epochs_per_round = None
        if (epochs_per_round is None) == (steps_per_round is None):
            raise ValueError("give exactly one of epochs_per_round and steps_per_round")
        _positive_int("epochs_per_round", epochs_per_round)
        _positive_int("steps_per_round", steps_per_round)
        _positive_int("rounds", rounds)
        sources = _paths(masks_from)
        if sources is not None:
            if not sources:
                raise ValueError("masks_from: empty; give a run directory (or one per stacked member)")
            if target_density is not None:
                raise ValueError("masks_from: the levels are the source's; give rounds (or nothing), "
                                 "not target_density")
            if rewind not in ("init", "step"):
                raise ValueError(f"masks_from: needs rewind='init' or 'step' (each level trains from the start), "
                                 f"not {rewind!r}")
            if rounds is None:
                for src in sources:
                    load_levels(src, 1)  # a missing or empty source is named here, not as "no rounds given"
                rounds = min(count_levels(src) for src in sources)
        if (rounds is None) == (target_density is None):
            raise ValueError("give exactly one of rounds (training rounds, dense one included) and target_density")
        if target_density is not None and not 0 < target_density < 1:
            raise ValueError(f"target_density: {target_density!r} is not valid; use a fraction in (0, 1)")
        if init is not None and not isinstance(init, InitSpec):
            raise ValueError(f"init: expected an InitSpec, got {type(init).__name__}")
        checks.at_least("rewind_step", rewind_step, 0, "an integer step")
        self.init, self.init_copy, self.parameters = init, init_copy, parameters
        self.output_layer = output_layer
        self._output: str | None = None  # the output layer's tensor, resolved at fit start
        self.scope, self.epochs_per_round, self.steps_per_round = scope, epochs_per_round, steps_per_round
        self.rounds, self.target_density = rounds, target_density
        self.criterion = "random" if control == "random_prune" else criterion
        self.rewind, self.rewind_step, self.reset_optimizer = rewind, rewind_step, reset_optimizer
        self.reset_lr_schedule = rewind != "none" if reset_lr_schedule is None else reset_lr_schedule
        self.control, self.control_seed, self.prune_seed = control, control_seed, prune_seed
        self.monitor, self.monitor_mode = monitor, monitor_mode
        self.sleeping_thresholds, self.sleeping_relative = tuple(sleeping_thresholds), tuple(sleeping_relative)
        self.sleeping_check, self.verbose = sleeping_check, verbose
        self.masks_from, self.save_masks = sources, _paths(save_masks)
        # per source (member): the masks of each level, read now so that a bad source fails before training
        self._levels = None if sources is None else [load_levels(src, rounds) for src in sources]

        self.history: list[dict[str, Any]] = []  # one plain record per finished round
        self.masks: dict[str, torch.Tensor] = {}
        self.round = 0
        self.done = False
        # set when loss or weights go non-finite: training stops there, nothing more is pruned
        self.diverged: dict[str, Any] | None = None
        self._density: dict[str, float] = {}  # target density per unit "name#member"
        self._round_start = (0, 0)  # (epoch, global step)
        # per member (None: an unstacked network): (best monitor value, epoch, step, eval metrics then)
        self._best: dict[int | None, tuple[float, int, int, dict[str, float]]] = {}
        self.members: int | None = None  # K when the prunable tensors stack K member networks
        self._snapshot: dict[str, torch.Tensor] | None = None  # parameters and buffers at rewind_step
        # buffers (BatchNorm running statistics, counters) at fit start: a rewind to init restores them too;
        # a few values per channel, not weights, so keeping them costs next to nothing
        self._buffers0: dict[str, torch.Tensor] = {}
        self._copy: dict[str, torch.Tensor] | None = None
        self._lr_start: list[dict[str, Any]] | None = None
        self._pending_lr_reset = False
        self._end_at_validation = False  # a step-counted round has reached its length; its evaluation is next
        self._loaded: dict[str, Any] | None = None
        self._hooks: list[Any] = []
        self._owner: tuple[str, nn.Module] | None = None
        self._params: dict[str, nn.Parameter] = {}
        self._hot: MaskedMultiply | None = None

    # ------------------------------------------------------------------ set-up
    def _select_parameters(self, module: nn.Module) -> list[str]:
        owners = {
            f"{prefix}.{n}" if prefix else n: (sub, p)
            for prefix, sub in module.named_modules()
            for n, p in sub.named_parameters(recurse=False)
        }
        if callable(self.parameters):
            names = [n for n, (sub, p) in owners.items() if self.parameters(n, sub, p)]
        elif self.parameters is None:
            names = [n for n, (sub, p) in owners.items() if n.endswith("weight") and (
                isinstance(sub, PRUNABLE) or (members_of(p) and p.dim() >= 3)  # stacked Linear/Conv weights
                or (isinstance(sub, nn.MultiheadAttention) and n.endswith("in_proj_weight")))]
        else:
            names = []
            for pattern in self.parameters:
                hits = [n for n in owners if fnmatch.fnmatchcase(n, pattern)]
                if not hits:
                    raise ValueError(f"parameters: {pattern!r} matches no parameter; parameters are {sorted(owners)}")
                names += [h for h in hits if h not in names]
        if not names:
            raise ValueError(f"parameters: nothing to prune in {type(module).__name__}")
        for pattern in self.layer_rates:
            if not any(fnmatch.fnmatchcase(n, pattern) for n in names):
                raise ValueError(f"layer_rates: {pattern!r} matches no prunable parameter; prunable are {names}")
        pattern = self.output_layer or getattr(module, "lottery_output_layer", None)
        hits = [n for n in names if fnmatch.fnmatchcase(n, pattern)] if pattern else names[-1:]
        if len(hits) != 1:
            raise ValueError(f"output_layer: {pattern!r} matches {len(hits)} prunable tensors ({hits}); it must "
                             f"name exactly one of {names}")
        self._output = hits[0]
        return names

    def unit_rate(self, name: str) -> float:
        for pattern, r in self.layer_rates.items():
            if fnmatch.fnmatchcase(name, pattern):
                return r
        if self.output_rate is not None and name == self._output:
            return self.output_rate
        return self.rate

    def _units(self) -> list[tuple[str, int | None]]:
        return [(n, m) for n, p in self._params.items() for m in (range(members_of(p)) if members_of(p) else [None])]

    @staticmethod
    def _unit(name: str, member: int | None) -> str:
        return name if member is None else f"{name}#{member}"

    def planned_rounds(self) -> int:
        if self.rounds is not None:
            return self.rounds
        sizes = {n: p[0].numel() if members_of(p) else p.numel() for n, p in self._params.items()}
        total = sum(sizes.values())
        for k in range(1, 10_000):
            if sum(s * (1 - self.unit_rate(n)) ** k for n, s in sizes.items()) / total <= self.target_density:
                return k + 1
        raise ValueError(f"target_density {self.target_density} is unreachable with these rates")

    def _resolve_owner(self, module: nn.Module) -> None:
        for prefix, sub in module.named_modules():
            if getattr(sub, SPEC_ATTR, None) is not None:
                self._owner = (prefix, sub)
                return
        self._owner = None

    def validate(self, pl_module: nn.Module) -> None:
        """Every check that needs the module (what to prune, stacked members, ``masks_from`` fitting its
        layers); ``fit`` runs it at its start, and a runner can call it before writing anything."""
        names = self._select_parameters(pl_module)
        all_params = dict(pl_module.named_parameters())
        self._params = {n: all_params[n] for n in names}
        stacked = {members_of(p) for p in self._params.values()}
        if len(stacked) > 1:
            raise ValueError(f"parameters: the prunable tensors stack different numbers of members ({stacked})")
        self.members = stacked.pop()
        if self.members and self.sleeping_check is not None:
            raise ValueError("sleeping_check: not supported for stacked members; train the start alone")
        for paths, what in ((self.masks_from, "masks_from"), (self.save_masks, "save_masks")):
            if paths is not None and len(paths) != (self.members or 1):
                raise ValueError(f"{what}: {len(paths)} folders for {self.members or 1} member network(s); "
                                 "give one per stacked member")
        for src, levels in zip(self.masks_from or [], self._levels or [], strict=True):
            check_fits(levels, {n: tuple(p.shape[1:] if self.members else p.shape) for n, p in self._params.items()},
                       src)

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._hot = None
        self.validate(pl_module)
        if self._loaded is not None:
            self._restore(pl_module)
        else:
            self._start(pl_module)
        self._save_level()
        rounds = self.planned_rounds()
        if self.epochs_per_round is not None:
            needed = rounds * self.epochs_per_round
            if trainer.max_epochs is None or trainer.max_epochs < 0 or trainer.max_epochs > needed:
                trainer.fit_loop.max_epochs = needed
            elif trainer.max_epochs < needed:
                rank_zero_warn(f"Trainer(max_epochs={trainer.max_epochs}) stops before the last of {rounds} rounds "
                               f"({self.epochs_per_round} epochs each need {needed}); pass max_epochs=None (the "
                               "callback sets it) or ≥ the rounds' epochs")
        else:
            # the last round's end stops the fit (should_stop); no max_steps, which would make Lightning treat
            # the fit as iteration-based and, resuming from an epoch-end checkpoint, run one empty epoch that
            # shifts every later epoch's batch order
            needed = rounds * self.steps_per_round
            if 0 <= trainer.fit_loop.epoch_loop.max_steps < needed:
                rank_zero_warn(f"Trainer(max_steps={trainer.max_steps}) stops before the last of {rounds} rounds "
                               f"({self.steps_per_round} steps each need {needed}); leave max_steps unset")
            if trainer.max_epochs is not None and trainer.max_epochs >= 0:
                trainer.fit_loop.max_epochs = -1
        self._apply()

    def _start(self, pl_module: nn.Module) -> None:
        self._resolve_owner(pl_module)
        if self.init_copy:
            warnings.warn("LotteryTicket(init_copy=True) stores a full copy of the initial weights", stacklevel=2)
            self._copy = {n: p.detach().clone() for n, p in pl_module.named_parameters()}
        elif self.init is not None or self._owner is None:
            if self.init is None:
                rank_zero_warn("LotteryTicket(init=None): the module carries no InitSpec, so it is re-initialised "
                               "with InitSpec() (seed 0, xavier_normal/hash), replacing its current weights; pass "
                               "init=InitSpec(...) to choose the start, or init_copy=True to keep the weights")
            initialize(pl_module, self.init or InitSpec())
            self._resolve_owner(pl_module)
        if not self.init_copy and self._owner is not None:
            check_regenerable(getattr(self._owner[1], SPEC_ATTR), type(pl_module).__name__)
        self.masks = {n: torch.ones_like(p, dtype=torch.bool) for n, p in self._params.items()}
        self._density = {self._unit(n, m): 1.0 for n, m in self._units()}
        self._buffers0 = {n: b.detach().clone() for n, b in pl_module.named_buffers()}
        if self._levels is not None:
            if self.control == "reinit":  # this run's w0 *is* the other seed's: rewinds and sleeping use it
                if self._owner is None or self._copy is not None:
                    raise ValueError("control='reinit' with masks_from needs a regenerable start (an InitSpec)")
                owner = self._owner[1]
                initialize(owner, shifted(getattr(owner, SPEC_ATTR), self.control_seed))
            self._set_level(pl_module, 0)
            if self.rewind == "init":
                self._reset_weights(pl_module)  # the control's weights (signed constant) from the first level on
        if self.rewind == "step" and self.rewind_step == 0:
            self._take_snapshot(pl_module)

    def _restore(self, pl_module: nn.Module) -> None:
        state, self._loaded = self._loaded, None
        self._resolve_owner(pl_module)
        if self._owner is not None and self._levels is not None and self.control == "reinit":
            owner = self._owner[1]  # freshly built with the start's own spec, as at fit start
            setattr(owner, SPEC_ATTR, shifted(getattr(owner, SPEC_ATTR), self.control_seed))
        elif self._owner is None and state["spec"] is not None and not self.init_copy:
            spec = state["spec"]
            setattr(
                pl_module,
                SPEC_ATTR,
                InitSpec.from_dict(spec) if isinstance(spec, dict) else tuple(InitSpec.from_dict(s) for s in spec),
            )
            self._resolve_owner(pl_module)
        masks = {}
        for name, packed in state["masks"].items():
            if name not in self._params:
                raise ValueError(f"checkpoint mask {name!r} matches no prunable parameter ({list(self._params)})")
            if tuple(packed["shape"]) != tuple(self._params[name].shape):
                raise ValueError(
                    f"checkpoint mask for {name!r} has shape {tuple(packed['shape'])}, "
                    f"but the parameter has shape {tuple(self._params[name].shape)}"
                )
            masks[name] = unpack_bits(packed, self._params[name].device)
        missing = sorted(set(self._params) - set(masks))
        if missing:
            raise ValueError(f"checkpoint has no mask for {missing}")
        self.check_state(state)
        self.masks = masks
        self.round, self.done, self.history = state["round"], state["done"], list(state["history"])
        best = state["best"]
        self._density, self._round_start = dict(state["density"]), tuple(state["round_start"])
        self._best = best if isinstance(best, dict) else {} if best is None else {None: best}
        self._snapshot, self._copy = state["snapshot"], state["copy"]
        self._buffers0 = dict(state.get("buffers0") or {})  # absent in checkpoints from before buffers rewound
        self._lr_start, self._pending_lr_reset = state["lr_start"], state["pending_lr_reset"]

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._hot = None
        for opt in trainer.optimizers:
            self._hooks.append(opt.register_step_post_hook(lambda *_: self._apply()))
        if self._lr_start is None:
            self._lr_start = [{"lrs": [g["lr"] for g in opt.param_groups]} for opt in trainer.optimizers]
            for entry, config in zip(self._lr_start, trainer.lr_scheduler_configs, strict=False):
                entry["scheduler"] = config.scheduler.state_dict()

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        for handle in self._hooks:
            handle.remove()
        self._hooks.clear()

    # ------------------------------------------------------------------ hot path
    def _apply(self) -> None:
        if self._hot is None:  # planned once per round: this runs after every optimizer step
            names = [n for n, m in self.masks.items() if not bool(m.all())]  # all-ones masks are skipped
            self._hot = MaskedMultiply([self._params[n].data for n in names], [self.masks[n] for n in names])
        self._hot()

    # ------------------------------------------------------------------ θ0
    def initial(self, pl_module: nn.Module, name: str, seed_shift: int = 0) -> torch.Tensor:
        """θ0 of a parameter of ``pl_module``: regenerated (or from the explicit copy)."""
        if self._copy is not None:
            return self._copy[name]
        if self._owner is None:
            raise ValueError("no init spec to regenerate θ0 from")
        prefix, owner = self._owner
        rel = name[len(prefix) + 1 :] if prefix else name
        spec = getattr(owner, SPEC_ATTR)
        return initial_value(owner, rel, shifted(spec, seed_shift) if seed_shift else spec)

    def _take_snapshot(self, pl_module: nn.Module) -> None:
        self._snapshot = {n: p.detach().clone() for n, p in pl_module.named_parameters()}
        self._snapshot.update({n: b.detach().clone() for n, b in pl_module.named_buffers()})

    # ------------------------------------------------------------------ round bookkeeping
    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._pending_lr_reset:
            self._reset_lr(trainer)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        if self.rewind == "step" and self._snapshot is None and trainer.global_step >= self.rewind_step:
            self._take_snapshot(pl_module)
        if self.steps_per_round and trainer.global_step - self._round_start[1] >= self.steps_per_round:
            if trainer.check_val_every_n_epoch is None and not self._end_at_validation:
                # validation counted in steps runs right after this batch: the round's last evaluation belongs
                # to it (its early-stopping candidate, its end-of-round metrics), so the round ends there
                self._end_at_validation = True
                return
            if not self._end_at_validation:
                self._end_round(trainer, pl_module)
                if self._pending_lr_reset:
                    self._reset_lr(trainer)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or self._diverging(trainer):
            return
        metrics = trainer.callback_metrics
        for member in self._member_ids():
            key = self.monitor if member is None else f"{self.monitor}/m{member}"
            if key not in metrics:
                continue
            value, best = float(metrics[key]), self._best.get(member)
            if best is None or (value > best[0] if self.monitor_mode == "max" else value < best[0]):
                epoch = trainer.current_epoch - self._round_start[0] + 1
                step = trainer.global_step - self._round_start[1]
                self._best[member] = (value, epoch, step, member_metrics(metrics, member))
        # End the round here, not in on_train_epoch_end: ModelCheckpoint saves in on_validation_end (after
        # this hook, since Lightning runs checkpoint callbacks last), so its checkpoint holds the new masks.
        if trainer.is_last_batch and self._round_complete(trainer):
            self._end_round(trainer, pl_module)
        if self._end_at_validation:  # a round counted in steps, whose last step this evaluation followed
            self._end_at_validation = False
            self._end_round(trainer, pl_module)
            if self._pending_lr_reset:
                self._reset_lr(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._diverging(trainer):
            return
        if self._round_complete(trainer):  # no epoch-end validation ran this epoch
            self._end_round(trainer, pl_module)

    def records(self, member: int | None = None) -> list[dict[str, Any]]:
        """The finished rounds as an unstacked run records them: stacked member ``member``'s own (``None``:
        the network's history as it is)."""
        if member is None:
            return list(self.history)
        return [{"round": r["round"], "epoch": r["epoch"], "step": r["step"], **r["members"][member]}
                for r in self.history]

    def _member_ids(self) -> list[int | None]:
        return list(range(self.members)) if self.members else [None]

    def _round_complete(self, trainer: pl.Trainer) -> bool:
        return bool(self.epochs_per_round) and trainer.current_epoch + 1 - self._round_start[0] >= self.epochs_per_round

    def _diverging(self, trainer: pl.Trainer) -> bool:
        """Stop the fit (and record when and what) once a loss or a prunable weight is non-finite."""
        if self.diverged is None:
            found = non_finite_metrics(trainer.callback_metrics, self.members)
            weights = {n: p.detach() for n, p in self._params.items()}
            for member, what in non_finite_members(weights, self.members).items():
                found.setdefault(member, what)
            if found:
                first = found[min(found, key=lambda m: -1 if m is None else m)]
                self.diverged = {"round": self.round, "epoch": trainer.current_epoch, "step": trainer.global_step,
                                 "what": first, "members": sorted(m for m in found if m is not None)}
                where = f" (members {self.diverged['members']})" if self.members else ""
                say(f"diverged in round {self.round + 1}, epoch {trainer.current_epoch + 1}: {first}{where}; "
                    "training stopped, nothing pruned from it")
        if self.diverged is not None:
            trainer.should_stop = True
        return self.diverged is not None

    def _end_round(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.done or self._diverging(trainer):
            return
        record = self._record(trainer, pl_module)
        self.history.append(record)
        flat = {f"lottery/{k}": v for k, v in record.items() if k != "members"}
        for m, rec in enumerate(record.get("members", [])):
            flat.update({f"lottery/m{m}/{k}": v for k, v in rec.items()})
        for logger in trainer.loggers:
            logger.log_metrics(flat, step=trainer.global_step)
        total = self.planned_rounds()
        if self.verbose:
            parts = [f"round {self.round + 1}/{total}", f"{record['remaining_pct']:.1f} % remaining"]
            parts += [
                f"{k.removesuffix('_acc').replace('_', ' ')} {100 * v:.2f} %"
                for k, v in record.items()
                if k.split("_")[0] in ("val", "test") and k.endswith("acc")
            ]
            if self.members:
                parts.append(f"mean of {self.members} members")
            say(" · ".join(parts))
        if self.round + 1 >= total:
            self.done = True
            trainer.should_stop = True
            return
        if self._levels is not None:
            self._set_level(pl_module, self.round + 1)
        else:
            self._prune(pl_module)
        self._rewind(trainer, pl_module)
        self.round += 1
        self._save_level()
        self._round_start = (
            trainer.current_epoch + 1 if self.epochs_per_round else trainer.current_epoch,
            trainer.global_step,
        )
        self._best = {}

    def _record(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        """The round's record; for stacked members, ``members`` holds one such record per member."""
        rec: dict[str, Any] = {"round": self.round, "epoch": trainer.current_epoch, "step": trainer.global_step}
        can_regenerate = self._copy is not None or self._owner is not None
        sleeping = can_regenerate and bool(self.sleeping_thresholds or self.sleeping_relative or self.sleeping_check)
        w0 = {n: self.initial(pl_module, n) for n in self.masks} if sleeping else {}
        members = [self._member_record(trainer, m, w0) for m in self._member_ids()]
        if self.members is None:
            rec.update(members[0])
            if self.sleeping_check is not None and w0:  # w0 is empty when it cannot be regenerated
                self._sleeping_check(trainer, pl_module, rec, w0)
            return rec
        rec["remaining_pct"] = sum(m["remaining_pct"] for m in members) / len(members)
        rec.update(member_metrics(trainer.callback_metrics, None))  # the members' means, for the log line
        rec["members"] = members
        return rec

    @torch.no_grad()
    def _member_record(self, trainer: pl.Trainer, member: int | None, w0: dict[str, torch.Tensor]) -> dict[str, Any]:
        masks = {n: self._slice(m, member) for n, m in self.masks.items()}
        alive = {n: int(m.sum()) for n, m in masks.items()}
        sizes = {n: m.numel() for n, m in masks.items()}
        rec: dict[str, Any] = {"remaining_pct": 100.0 * sum(alive.values()) / sum(sizes.values())}
        rec.update({f"remaining_pct/{n}": 100.0 * alive[n] / sizes[n] for n in masks})
        rec.update(member_metrics(trainer.callback_metrics, member))
        best = self._best.get(member)
        if best is not None:
            rec[f"best_{self.monitor}"], rec["best_epoch"], rec["best_step"] = best[:3]
            # F&C report test accuracy at the early-stopping iteration: every eval metric at the best epoch
            rec.update({f"at_best/{k}": v for k, v in best[3].items()})
        for n, mask in masks.items() if w0 else ():
            w = self._slice(self._params[n].detach(), member)
            fr = sleeping_fractions(w, self._slice(w0[n], member), mask, self.sleeping_thresholds,
                                    self.sleeping_relative)
            rec.update({f"sleeping/{n}/{k}": v for k, v in fr.items()})
        return rec

    @torch.no_grad()
    def _sleeping_check(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, rec: dict[str, Any], w0: dict[str, torch.Tensor]
    ) -> None:
        """Zero the survivors that moved less than ``sleeping_check`` from w0 and re-measure accuracy."""
        if not trainer.val_dataloaders:
            return
        sleepers = {n: m & ((self._params[n].detach() - w0[n]).abs() <= self.sleeping_check)
                    for n, m in self.masks.items()}
        loader = trainer.val_dataloaders
        loader = loader[0] if isinstance(loader, (list, tuple)) else loader
        was_training = pl_module.training
        pl_module.eval()
        before = accuracy(pl_module, loader, pl_module.device)
        saved = {n: self._params[n].detach()[s].clone() for n, s in sleepers.items()}
        for n, s in sleepers.items():
            self._params[n].data[s] = 0
        after = accuracy(pl_module, loader, pl_module.device)
        for n, s in sleepers.items():
            self._params[n].data[s] = saved[n]
        pl_module.train(was_training)
        n_alive = sum(int(m.sum()) for m in self.masks.values())
        rec["sleeping_check/fraction"] = sum(int(s.sum()) for s in sleepers.values()) / max(1, n_alive)
        rec["sleeping_check/acc_before"], rec["sleeping_check/acc_after"] = before, after
        rec["sleeping_check/acc_change"] = after - before

    # ------------------------------------------------------------------ prune and rewind
    @torch.no_grad()
    def _prune(self, pl_module: nn.Module) -> None:
        score_fn = CRITERIA[self.criterion]
        scores, pooled = {}, {}
        w0: dict[str, torch.Tensor] = {}  # one tensor's w0 (all members), regenerated once, not once per member
        for name, member in self._units():
            w, m = self._slice(self._params[name].detach(), member), self._slice(self.masks[name], member)

            def init(name: str = name, member: int | None = member) -> torch.Tensor:
                if name not in w0:
                    w0.clear()
                    w0[name] = self.initial(pl_module, name)
                return self._slice(w0[name], member)

            unit = self._unit(name, member)
            if isinstance(self.prune_seed, int):
                key = score_key(self.prune_seed, name, self.round, member or 0)
            else:  # one seed per member: member k draws the scores its cell draws alone
                key = score_key(self.prune_seed[member or 0], name, self.round, 0)
            scores[unit] = score_fn(w, init, key)
            self._density[unit] *= 1.0 - self.unit_rate(name)
            if (
                self.scope == "global"
                and not any(fnmatch.fnmatchcase(name, p) for p in self.layer_rates)
                and not (self.output_rate is not None and name == self._output)
            ):
                pooled.setdefault(member, []).append((name, unit))
            else:
                self._slice(self.masks[name], member).copy_(select_layerwise(scores[unit], m, self._density[unit]))
        for member, group in pooled.items():
            masks = [self._slice(self.masks[n], member) for n, _ in group]
            sizes = [m.numel() for m in masks]
            target = sum(self._density[u] * s for (_, u), s in zip(group, sizes, strict=True)) / sum(sizes)
            new = select_global([scores[u] for _, u in group], masks, target)
            for m, nm in zip(masks, new, strict=True):
                m.copy_(nm)
        self._hot = None  # masks that were all ones may not be any more

    @staticmethod
    def _slice(t: torch.Tensor, member: int | None) -> torch.Tensor:
        return t if member is None else t[member]

    @torch.no_grad()
    def _set_level(self, pl_module: nn.Module, level: int) -> None:
        """The masks of ``masks_from``'s level; for ``random_prune``, random ones with its per-layer counts."""
        assert self._levels is not None
        for name, member in self._units():
            source = self._levels[member or 0][level][name]
            if self.control == "random_prune":
                spec = getattr(self._owner[1], SPEC_ATTR, None) if self._owner else None
                seed = (spec if isinstance(spec, InitSpec) else spec[member or 0]).seed if spec else 0
                # keyed by the start's seed, not the member index: a member draws what its cell draws alone
                key = stream_key(self.prune_seed if isinstance(self.prune_seed, int) else self.prune_seed[member or 0],
                                 f"random-prune/{seed}/{name}/{level}")
                scores = CRITERIA["random"](source, source.clone, key)
                source = keep_top(scores, torch.ones_like(source), int(source.sum()))
            self._slice(self.masks[name], member).copy_(source)
        self._hot = None

    def _save_level(self) -> None:
        """The masks this round trains with, one file per member folder (``save_masks``)."""
        for member, folder in enumerate(self.save_masks or []):
            save_level(folder, self.round, {n: self._slice(m, member if self.members else None)
                                            for n, m in self.masks.items()})

    @torch.no_grad()
    def _reset_weights(self, pl_module: nn.Module) -> None:
        if self.rewind == "step" and self._snapshot is None:
            raise ValueError(f"rewind_step: {self.rewind_step} is not valid; round {self.round + 1} ended before "
                             "that step, so there is no snapshot to rewind to (use a step within the first round)")
        for name, p in pl_module.named_parameters():
            if self.rewind == "step":
                p.copy_(self._snapshot[name])
            elif name in self.masks and self.control == "reinit" and self._levels is None:
                p.copy_(self.initial(pl_module, name, seed_shift=self.control_seed + self.round))
            elif name in self.masks and self.control == "signed_constant":
                w0 = self.initial(pl_module, name)
                if self.members:  # each member's own layer std
                    std = w0.double().flatten(1).std(dim=1).view(-1, *[1] * (w0.dim() - 1))
                else:
                    std = w0.double().std()
                p.copy_(torch.sign(w0) * std.to(w0.dtype))
            else:
                p.copy_(self.initial(pl_module, name))
        buffers = self._snapshot if self.rewind == "step" else self._buffers0
        for name, b in pl_module.named_buffers():
            if buffers is not None and name in buffers:  # running statistics go back with the weights
                b.copy_(buffers[name])

    @torch.no_grad()
    def _rewind(self, trainer: pl.Trainer, pl_module: nn.Module) -> None:
        if self.rewind in ("init", "step"):
            self._reset_weights(pl_module)
        self._apply()
        if self.reset_optimizer:
            for opt in trainer.optimizers:
                opt.state.clear()
        self._pending_lr_reset = self.reset_lr_schedule

    def _reset_lr(self, trainer: pl.Trainer) -> None:
        for opt, entry in zip(trainer.optimizers, self._lr_start or [], strict=False):
            for group, lr in zip(opt.param_groups, entry["lrs"], strict=True):
                group["lr"] = lr
        for config, entry in zip(trainer.lr_scheduler_configs, self._lr_start or [], strict=False):
            if "scheduler" in entry:
                config.scheduler.load_state_dict(entry["scheduler"])
        self._pending_lr_reset = False

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        spec = getattr(self._owner[1], SPEC_ATTR, None) if self._owner else None
        if isinstance(spec, InitSpec):
            spec = spec.to_dict()
        elif spec is not None:
            spec = [s.to_dict() for s in spec]
        return {
            "version": 1,
            "round": self.round,
            "done": self.done,
            "history": self.history,
            "masks": {n: pack_bits(m) for n, m in self.masks.items()},
            "density": self._density,
            "round_start": list(self._round_start),
            "best": self._best,
            "spec": spec,
            "snapshot": self._snapshot,
            "buffers0": self._buffers0,
            "copy": self._copy,
            "lr_start": self._lr_start,
            "pending_lr_reset": self._pending_lr_reset,
        }

    def check_state(self, state: Mapping[str, Any]) -> None:
        """``ValueError`` unless a checkpoint's state fits this schedule: its round inside it, every mask
        keeping some weight (a damaged or foreign checkpoint would train an empty layer)."""
        rnd = state.get("round")
        if not isinstance(rnd, int) or rnd < 0 or (self.rounds is not None and rnd >= self.rounds):
            raise ValueError(f"its round {rnd!r} is outside this schedule of {self.rounds} rounds; resume with the "
                             "config that wrote it")
        masks = state.get("masks")
        if not isinstance(masks, dict):
            raise ValueError("it holds no masks")
        empty = [n for n, packed in masks.items() if not bool(unpack_bits(packed, "cpu").any())]
        if empty:
            raise ValueError(f"its masks of {empty} keep no weight at all")

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict.get("version") != 1:
            raise ValueError(f"LotteryTicket checkpoint state version {state_dict.get('version')!r} is not 1")
        self._loaded = state_dict

    # ------------------------------------------------------------------ reporting
    def state_bytes(self) -> dict[str, int]:
        """Bytes this callback holds for lottery state: masks, θ0 copies, snapshots."""

        def size(d: Mapping[str, torch.Tensor] | None) -> int:
            return sum(t.numel() * t.element_size() for t in (d or {}).values())

        return {
            "masks": size(self.masks),
            # the hot path's float mask copies: only on CPU without the C kernel
            "mask_cache": self._hot.extra_bytes() if self._hot is not None else 0,
            "theta0": size(self._copy),
            "snapshot": size(self._snapshot),
            "prunable_weights": sum(m.numel() for m in self.masks.values()),
        }


__all__ = ["LotteryTicket"]

"""A ``PruneConfig`` (one, or one per stacked member) resolved into the strategies a ticket runs with: the
control, what the next masks are (by criterion, or replayed from a finished run's saved levels) and what a
rewind restores. Every check that needs a registry or a mask file runs here, once, at construction."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from lottery import checks
from lottery.callbacks.rewind import Rewind, rewind
from lottery.config import ConfigError, PruneConfig
from lottery.pruning import CRITERIA
from lottery.pruning.controls import Control, control
from lottery.pruning.levels import MaskSourceError, load_levels
from lottery.pruning.next_masks import PruneAtInit, PruneByCriterion, ReplayLevels


@dataclass
class Plan:
    members: list[PruneConfig]  # one per stacked member (one for a network alone)
    control: Control
    next_masks: PruneByCriterion | ReplayLevels | PruneAtInit
    rewind: Rewind
    rounds: int | None  # None: until prune.target_density
    masks_from: list[str] | None  # one source per member
    levels: list[list[dict[str, torch.Tensor]]] | None  # per source: the masks of each level


def one_per_member(prune: PruneConfig | Sequence[PruneConfig]) -> list[PruneConfig]:
    members = [prune] if isinstance(prune, PruneConfig) else list(prune)
    if not members or not all(isinstance(p, PruneConfig) for p in members):
        raise ValueError("prune: expected a PruneConfig (or one per stacked member)")
    own = {"prune_seed": 0, "masks_from": None}  # the only fields stacked members may differ in
    shared = [dataclasses.replace(p, **own) for p in members]
    if any(s != shared[0] for s in shared):
        raise ValueError("prune: stacked members may differ only in prune_seed and masks_from")
    if len({p.masks_from is None for p in members}) > 1:
        raise ValueError("prune.masks_from: set for some stacked members but not all")
    return members


def plan(prune: PruneConfig | Sequence[PruneConfig], start_seed: Callable[[int | None], int]) -> Plan:
    """``start_seed(member)``: the seed of a member's start, known at fit start (random-prune replays key on
    it, so a stacked member draws what its cell draws alone)."""
    members = one_per_member(prune)
    p = members[0]
    p.check()
    try:  # the names the registries know: the same words as the CLI's pre-flight
        ctl = control(p.control, p.control_seed)
        checks.choice("prune.criterion", p.criterion, sorted(CRITERIA))
    except ValueError as e:
        raise ConfigError(str(e)) from None
    seeds = [q.prune_seed for q in members] if len(members) > 1 else p.prune_seed
    next_masks: PruneByCriterion | ReplayLevels | PruneAtInit = PruneByCriterion(ctl.criterion(p.criterion), p.scope,
                                                                                 seeds, p.invert)
    if p.at_init is not None:
        next_masks = PruneAtInit(p.at_init, p.scope, p.prune_seed, p.invert)
    rounds, sources, levels = p.rounds, None, None
    if p.masks_from is not None:
        sources = [str(q.masks_from) for q in members]
        try:
            # each source read once, here, so a missing, empty or damaged one fails before training
            levels = [load_levels(src, rounds) for src in sources]  # rounds None: every level it holds
            if rounds is None:
                rounds = min(len(held) for held in levels)
                levels = [held[:rounds] for held in levels]
        except MaskSourceError as e:
            raise ConfigError(f"prune.{e}") from None
        next_masks = ctl.replay(levels, seeds, start_seed)
    # the LR schedule restarts with every rewind, except when nothing is rewound (fine-tuning)
    back = rewind(p.rewind, p.rewind_step, p.reset_optimizer, reset_lr=p.rewind != "none")
    return Plan(members, ctl, next_masks, back, rounds, sources, levels)

"""Random pruning: the same number of weights per layer as the ticket, chosen at random."""

from __future__ import annotations

import torch

from lottery.generators import stream_key
from lottery.pruning.controls.base import Control
from lottery.pruning.criteria import CRITERIA
from lottery.pruning.next_masks import ReplayLevels, member_seed
from lottery.pruning.select import keep_top


class RandomLevels(ReplayLevels):
    """A random mask with each saved level's per-layer count, keyed by the start's seed (not the member
    index: a stacked member draws what its cell draws alone)."""

    def mask(self, source: torch.Tensor, name: str, member: int | None, level: int) -> torch.Tensor:
        key = stream_key(member_seed(self.seeds, member), f"random-prune/{self.start_seed(member)}/{name}/{level}")
        scores = CRITERIA["random"](source, source.clone, key)
        return keep_top(scores, torch.ones_like(source), int(source.sum()))


class RandomPrune(Control):
    name = "random_prune"
    replay = RandomLevels

    def criterion(self, configured: str) -> str:
        return "random"

"""A control experiment of a ticket: what it changes against IMP proper. Every hook's default is IMP's own."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch

from lottery.pruning.next_masks import ReplayLevels

Regenerate = Callable[[int], torch.Tensor]  # a tensor's w0 with the start's seed moved by the argument


class Control:
    """IMP itself (``prune.control: null``); a registered control overrides some of these."""

    name: ClassVar[str | None] = None
    replay: ClassVar[type[ReplayLevels]] = ReplayLevels  # how saved levels are turned into masks

    def __init__(self, seed_shift: int) -> None:
        self.seed_shift = seed_shift

    def criterion(self, configured: str) -> str:
        """The pruning score this control prunes by, when it derives its own masks."""
        return configured

    def start_shift(self, replaying: bool) -> int:
        """Seed shift of the start this run trains from (and rewinds to)."""
        return 0

    def rewound(self, initial: Regenerate, round_: int, replaying: bool, stacked: bool) -> torch.Tensor:
        """What a pruned tensor's weights go back to at a rewind to init, after round ``round_``."""
        return initial(0)

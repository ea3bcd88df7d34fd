"""Random reinitialisation (Frankle & Carbin §2): the ticket's masks, kept weights drawn from another seed."""

from __future__ import annotations

import torch

from lottery.pruning.controls.base import Control, Regenerate


class Reinit(Control):
    """With saved levels: w0 of the start's seed + ``control_seed``, the same at every level (the run's own
    start, so sleeping and movement are measured against it). Deriving its own masks: a new draw every
    round (seed + ``control_seed`` + round)."""

    name = "reinit"

    def start_shift(self, replaying: bool) -> int:
        return self.seed_shift if replaying else 0

    def rewound(self, initial: Regenerate, round_: int, replaying: bool, stacked: bool) -> torch.Tensor:
        return initial(0) if replaying else initial(self.seed_shift + round_)

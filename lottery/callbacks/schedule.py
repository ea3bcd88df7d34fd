"""A ticket's rounds in a user's Trainer: the fit is as long as the rounds, whatever ``max_epochs`` says."""

from __future__ import annotations

import pytorch_lightning as pl
from pytorch_lightning.utilities import rank_zero_warn


def fit_length(trainer: pl.Trainer, rounds: int, epochs_per_round: int | None, steps_per_round: int | None) -> None:
    """Set the Trainer's length to ``rounds`` rounds, or warn when the user's limit stops it earlier."""
    if epochs_per_round is not None:
        needed = rounds * epochs_per_round
        if trainer.max_epochs is None or trainer.max_epochs < 0 or trainer.max_epochs > needed:
            trainer.fit_loop.max_epochs = needed
        elif trainer.max_epochs < needed:
            rank_zero_warn(f"Trainer(max_epochs={trainer.max_epochs}) stops before the last of {rounds} rounds "
                           f"({epochs_per_round} epochs each need {needed}); pass max_epochs=None (the "
                           "callback sets it) or ≥ the rounds' epochs")
        return
    # the last round's end stops the fit (should_stop); no max_steps, which would make Lightning treat the fit
    # as iteration-based and, resuming from an epoch-end checkpoint, run one empty epoch that shifts every
    # later epoch's batch order
    needed = rounds * (steps_per_round or 0)
    if 0 <= trainer.fit_loop.epoch_loop.max_steps < needed:
        rank_zero_warn(f"Trainer(max_steps={trainer.max_steps}) stops before the last of {rounds} rounds "
                       f"({steps_per_round} steps each need {needed}); leave max_steps unset")
    if trainer.max_epochs is not None and trainer.max_epochs >= 0:
        trainer.fit_loop.max_epochs = -1

"""Accuracy against training iterations within each round (Frankle & Carbin's Figure 3 and 5), recorded when
evaluations are counted in steps (``train.eval_every_steps``): one point every ``every`` steps of a round, a
few dozen numbers per round, kept in the run's ``results.json``."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl

from lottery.callbacks import LotteryTicket

KEYS = ("val_loss", "val_acc", "test_loss", "test_acc")


class EvalCurve(pl.Callback):
    """Put it before the ``LotteryTicket`` in the Trainer's callbacks: a round's last evaluation is recorded
    before the round ends there."""

    def __init__(self, lottery: LotteryTicket, every: int = 1000) -> None:
        self.lottery, self.every = lottery, every
        self.points: list[dict[str, Any]] = []

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        step = trainer.global_step - self.lottery._round_start[1]
        if step % self.every:
            return
        metrics = trainer.callback_metrics
        point: dict[str, Any] = {"round": self.lottery.round, "step": step}
        for m in range(self.lottery.members or 1):
            suffix = f"/m{m}" if self.lottery.members else ""
            point[m] = {k: float(metrics[k + suffix]) for k in KEYS if k + suffix in metrics}
        self.points.append(point)

    def rows(self, member: int | None) -> list[dict[str, Any]]:
        """The curve of one stacked member (``None``: the network alone)."""
        return [{"round": p["round"], "step": p["step"], **p[member or 0]} for p in self.points]

    def state_dict(self) -> dict[str, Any]:
        return {"points": [{k if isinstance(k, str) else f"m{k}": v for k, v in p.items()} for p in self.points]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.points = [{int(k[1:]) if k.startswith("m") and k[1:].isdigit() else k: v for k, v in p.items()}
                       for p in state_dict.get("points", [])]

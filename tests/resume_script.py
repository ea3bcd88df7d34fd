"""Run a small IMP in its own process: `python -m tests.resume_script DIR full|kill|resume [plain|shuffled|epoch]`
(the training order: fixed, ``DataLoader(shuffle=True)``, or ``lottery.data.EpochSampler``)."""

from __future__ import annotations

import json
import os
import sys
import warnings

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader

from lottery.callbacks import LotteryTicket
from lottery.config import PruneConfig
from lottery.data import EpochSampler
from lottery.init import InitSpec
from tests.lightning_helpers import PlainClassifier, synthetic, trainer

warnings.filterwarnings("ignore")


class Kill(pl.Callback):
    """Simulate a crash: the process dies at the start of epoch 3 (mid round 1), no clean-up."""

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == 3:
            os._exit(17)


def main(out: str, mode: str, order: str = "plain") -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    cb = LotteryTicket(
        PruneConfig(rounds=3, epochs_per_round=2, output_rate=0.1, sleeping_thresholds=(1e-3,), sleeping_relative=()),
        init=InitSpec(seed=3),
    )
    callbacks = [cb, ModelCheckpoint(dirpath=os.path.join(out, "ckpt"), save_last=True, save_top_k=0)]
    if mode == "kill":
        callbacks.append(Kill())
    model = PlainClassifier(scheduler=True)
    train, val = synthetic()
    if order == "shuffled":
        train = DataLoader(train.dataset, batch_size=32, shuffle=True)
    elif order == "epoch":
        train = DataLoader(train.dataset, batch_size=32, sampler=EpochSampler(train.dataset, seed=5))
    ckpt = os.path.join(out, "ckpt", "last.ckpt") if mode == "resume" else None
    trainer(callbacks=callbacks, enable_checkpointing=True).fit(model, train, val, ckpt_path=ckpt)
    torch.save(model.state_dict(), os.path.join(out, f"{mode}.pt"))
    with open(os.path.join(out, f"{mode}.json"), "w") as f:
        json.dump(cb.history, f)


if __name__ == "__main__":
    main(*sys.argv[1:])

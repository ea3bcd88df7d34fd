"""Rewinds restore buffers too (issue 22): BatchNorm's running statistics and batch counter go back to their
fit-start values on a rewind to init, and to the snapshot's on a rewind to step k."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch import nn

from lottery.callbacks import LotteryTicket
from lottery.config import PruneConfig
from lottery.init import InitSpec
from tests.lightning_helpers import PlainClassifier, synthetic, trainer


class BatchNormClassifier(PlainClassifier):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(20, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 4))


class BufferProbe(pl.Callback):
    """The module's buffers as each epoch starts (after LotteryTicket's rewind at the round's end)."""

    def __init__(self) -> None:
        self.seen: list[dict[str, torch.Tensor]] = []

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.seen.append({n: b.detach().clone() for n, b in pl_module.named_buffers()})


def test_a_rewind_to_init_resets_batchnorm_statistics() -> None:
    module, probe = BatchNormClassifier(), BufferProbe()
    imp = LotteryTicket(
        PruneConfig(rounds=3, epochs_per_round=1, output_rate=None), init=InitSpec(seed=3), verbose=False
    )
    trainer(callbacks=[imp, probe], max_epochs=-1).fit(module, *synthetic())
    first = probe.seen[0]
    assert int(first["net.1.num_batches_tracked"]) == 0 and bool((first["net.1.running_var"] == 1).all())
    for later in probe.seen[1:]:  # every round starts from the fit-start statistics, not the trained ones
        for name, value in first.items():
            assert torch.equal(later[name], value), name
    assert int(module.net[1].num_batches_tracked) == 12  # the last round trained: 12 batches, counted from 0


def test_a_rewind_to_step_restores_the_snapshots_statistics() -> None:
    module, probe = BatchNormClassifier(), BufferProbe()
    imp = LotteryTicket(
        PruneConfig(rounds=3, epochs_per_round=1, rewind="step", rewind_step=5, output_rate=None),
        init=InitSpec(seed=3),
        verbose=False,
    )
    trainer(callbacks=[imp, probe], max_epochs=-1).fit(module, *synthetic())
    snapshot = imp.rewind.snapshot
    assert snapshot is not None and int(snapshot["net.1.num_batches_tracked"]) == 5
    for later in probe.seen[1:]:
        assert int(later["net.1.num_batches_tracked"]) == 5
        assert torch.equal(later["net.1.running_mean"], snapshot["net.1.running_mean"])

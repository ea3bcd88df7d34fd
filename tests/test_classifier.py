"""The classification LightningModule: optimisers, LR schedule, backward hooks, evaluation names."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch

from lottery.classifier import Classifier, StepSchedule
from lottery.data import TensorBatches
from lottery.init import InitSpec, initialize
from lottery.models import build
from tests.lightning_helpers import trainer


def data(n: int = 40) -> TensorBatches:
    g = torch.Generator().manual_seed(0)
    return TensorBatches(torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g), 10)


def test_schedule_warms_up_then_steps_down_at_epoch_milestones() -> None:
    s = StepSchedule(warmup_steps=4, milestones=[2, 3], gamma=0.1, steps_per_epoch=5)
    assert [round(s(i), 6) for i in range(17)] == [0.25, 0.5, 0.75, 1, 1, 1, 1, 1, 1, 1, 0.1, 0.1, 0.1, 0.1, 0.1,
                                                   0.01, 0.01]


class LrSpy(pl.Callback):
    def __init__(self) -> None:
        self.lrs: list[float] = []

    def on_train_batch_end(self, trainer: pl.Trainer, *_: object) -> None:
        self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])


def test_sgd_with_nesterov_weight_decay_and_milestones_in_a_real_trainer() -> None:
    module = Classifier(build("lenet_300_100", (1, 28, 28), 10), optimizer="sgd", lr=0.1, momentum=0.9,
                        nesterov=True, weight_decay=1e-4, milestones=[1], gamma=0.5, eval_names=("val",),
                        steps_per_epoch=4)
    spy = LrSpy()
    trainer(max_epochs=2, callbacks=[spy], limit_val_batches=0).fit(module, data())
    opt = module.trainer.optimizers[0]
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["nesterov"] and opt.defaults["weight_decay"] == 1e-4
    # the LR after each of the 4 steps per epoch; it halves from the first step of epoch 2
    assert spy.lrs == [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.05]
    assert module.trainer.global_step == 8


class BackwardSpy(pl.Callback):
    calls = 0

    def on_after_backward(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        BackwardSpy.calls += 1


@pytest.mark.parametrize("chunk", [1, 3])
def test_backward_hooks_still_run_for_callbacks_that_use_them(chunk: int) -> None:
    plain = Classifier(initialize(build("lenet5", (1, 28, 28), 10), InitSpec(seed=1)), eval_names=("val",))
    batches = data()
    batches.chunk = chunk
    trainer(max_epochs=1, limit_val_batches=0).fit(plain, batches)
    assert plain._direct  # nothing listens: loss.backward() directly
    BackwardSpy.calls = 0
    spied = Classifier(initialize(build("lenet5", (1, 28, 28), 10), InitSpec(seed=1)), eval_names=("val",))
    trainer(max_epochs=1, callbacks=[BackwardSpy()], limit_val_batches=0).fit(spied, batches)
    assert not spied._direct and BackwardSpy.calls == 4 and spied.trainer.global_step == 4
    for a, b in zip(plain.parameters(), spied.parameters(), strict=True):
        assert torch.equal(a, b)  # same steps, same weights, either way


def test_evaluation_metrics_are_named_by_loader() -> None:
    module = Classifier(build("lenet_300_100", (1, 28, 28), 10), eval_names=("val", "test"))
    t = trainer(max_epochs=1)
    t.fit(module, data(), [data(20), data(30)])
    assert {"val_loss", "val_acc", "test_loss", "test_acc", "train_loss"} <= set(t.callback_metrics)
    with pytest.raises(ValueError, match="optim.name: 'rmsprop' is not valid; choose one of adam, adamw, sgd"):
        Classifier(build("lenet5", (1, 28, 28), 10), optimizer="rmsprop")

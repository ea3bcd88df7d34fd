"""What each pruning criterion keeps and what each control rewinds the survivors to."""

import pytest
import pytorch_lightning as pl
import torch

from lottery.callbacks import LotteryTicket
from lottery.init import InitSpec, initial_value
from lottery.pruning import CRITERIA, score_key
from tests.lightning_helpers import PlainClassifier, quick_prune, synthetic, trainer
from tests.test_lottery_callback import fit


@pytest.mark.parametrize("criterion", sorted(CRITERIA))
def test_every_criterion_keeps_the_highest_scoring_weights(criterion):
    """Each criterion keeps exactly the top 80 % of its own score (|w|, |w − w0|, |w| − |w0|, |w0|, or the
    hash's uniforms), computed here from the trained weights and the regenerated w0."""
    cb = LotteryTicket(
        quick_prune(rounds=2, criterion=criterion),
        init=InitSpec(seed=4),
        verbose=False,
    )
    trained = {}

    class Capture(pl.Callback):  # before the lottery callback: the weights the round ended with
        def on_validation_end(self, trainer, pl_module):
            if trainer.current_epoch == 0:
                trained["w"] = pl_module.net[0].weight.detach().clone()

    model = PlainClassifier()
    trainer(callbacks=[Capture(), cb]).fit(model, *synthetic())
    w0 = initial_value(model, "net.0.weight")
    score = CRITERIA[criterion](trained["w"], lambda: w0, score_key(0, "net.0.weight", 0, 0))
    mask = cb.masks["net.0.weight"]
    assert int(mask.sum()) == round(640 * 0.8)
    assert float(score[mask].min()) >= float(score[~mask].max())


def test_movement_criterion_prunes_the_sleeping_weights():
    cb = LotteryTicket(
        quick_prune(rounds=2, criterion="movement", rate=0.5),
        init=InitSpec(seed=1),
    )
    captured = {}

    class Capture(pl.Callback):  # listed before the lottery callback: sees the trained, unpruned weights
        def on_validation_end(self, trainer, pl_module):
            if trainer.current_epoch == 0:
                captured["w"] = pl_module.net[0].weight.detach().clone()

    model = PlainClassifier()
    train, val = synthetic()
    trainer(callbacks=[Capture(), cb]).fit(model, train, val)
    moved = (captured["w"] - initial_value(model, "net.0.weight")).abs()
    mask = cb.masks["net.0.weight"]
    assert int(mask.sum()) == 320
    assert float(moved[mask].min()) >= float(moved[~mask].max())


class ControlProbe(pl.Callback):
    def __init__(self, cb: LotteryTicket) -> None:
        self.cb, self.seen = cb, {}

    def on_train_epoch_end(self, trainer, pl_module):
        if self.cb.round == 1 and not self.seen:
            self.seen = {n: p.detach().clone() for n, p in pl_module.named_parameters()}


@pytest.mark.parametrize("control", ["reinit", "signed_constant", "random_prune"])
def test_controls_rewind_survivors_to_the_control_values(control):
    spec = InitSpec(seed=4)
    cb = LotteryTicket(
        quick_prune(rounds=2, control=control),
        init=spec,
    )
    probe = ControlProbe(cb)
    model = fit(cb, extra=[probe])
    mask = cb.masks["net.0.weight"]
    got = probe.seen["net.0.weight"]
    w0 = initial_value(model, "net.0.weight")
    if control == "reinit":
        other = initial_value(model, "net.0.weight", spec.replace(seed=spec.seed + cb.prune.control_seed))
        assert torch.equal(got[mask], other[mask]) and not torch.equal(got[mask], w0[mask])
    elif control == "signed_constant":
        assert torch.equal(got[mask], (torch.sign(w0) * w0.double().std().float())[mask])
    else:
        assert cb.criterion == "random" and int(mask.sum()) == 512
        assert torch.equal(got[mask], w0[mask])
    assert torch.equal(probe.seen["net.0.bias"], torch.zeros(32))  # non-prunable tensors back to θ0
    assert not got[~mask].any()

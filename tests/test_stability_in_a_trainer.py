"""Stability to SGD noise with a user's own ``LightningModule`` and ``Trainer`` (issue 35 §2): a ticket's masks
from ``LotteryTicket(save_masks=…)``, two copies from the regenerated w0 on two batch orders (the user's
``DataLoader`` generator is the data-order seed), ``KeepMasks`` holding the zeros, ``instability`` between them."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from lottery.callbacks import LotteryTicket
from lottery.init import InitSpec, initialize
from lottery.pruning.levels import load_levels
from lottery.stability import KeepMasks, error_rate, instability, interpolate
from tests.lightning_helpers import PlainClassifier, quick_prune, synthetic, trainer


def test_a_tickets_stability_in_a_users_own_trainer(tmp_path: Path) -> None:
    spec = InitSpec(seed=5)
    train, val = synthetic()
    ticket = LotteryTicket(quick_prune(rounds=2, rate=0.5), init=spec, save_masks=str(tmp_path / "masks"))
    trainer(max_epochs=2, callbacks=[ticket]).fit(PlainClassifier(), train, val)
    masks = load_levels(str(tmp_path / "masks"), 2)[1]

    def trained_copy(order: int) -> PlainClassifier:
        module = initialize(PlainClassifier(), spec)  # the ticket's w0, regenerated
        loader = DataLoader(train.dataset, batch_size=32, shuffle=True,
                            generator=torch.Generator().manual_seed(order))
        trainer(max_steps=30, callbacks=[KeepMasks(masks)]).fit(module, loader)
        return module

    a, b, again = trained_copy(1), trained_copy(2), trained_copy(1)
    middle = interpolate(a, b, 0.5)
    for name, m in masks.items():  # the pruned weights stayed zero in both copies, so along the line too
        for net in (a, b, middle):
            w = dict(net.named_parameters())[name]
            assert not w[~m].any() and w[m].any(), name
    value, errors = instability(a, b, 5, val)
    assert len(errors) == 5 and errors[0] == error_rate(a, val) and errors[-1] == error_rate(b, val)
    assert value == max(errors) - (errors[0] + errors[-1]) / 2
    assert any(not torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))
    assert instability(a, again, 5, val)[0] == 0.0  # one batch order twice: one network


def test_keep_masks_names_masks_keyed_for_another_module() -> None:
    train, _ = synthetic()
    wrong = {"model.net.0.weight": torch.ones(32, 20, dtype=torch.bool)}
    with pytest.raises(ValueError, match=r"KeepMasks: the module has no parameters \['model.net.0.weight'\]; "
                                         r"key the masks by the module's own names \(such as 'net.0.weight'\)"):
        trainer(max_steps=1, callbacks=[KeepMasks(wrong)]).fit(PlainClassifier(), train)

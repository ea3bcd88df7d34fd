"""The callback in a user's own Trainer: wrong settings are named, round lines show, every layer kind is handled."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from lottery.callbacks import LotteryTicket
from lottery.config import PruneConfig
from lottery.init import InitSpec, initial_value, initialize
from lottery.models.stacked import stack
from tests.lightning_helpers import PlainClassifier, synthetic, trainer


def test_the_callback_names_an_unreached_rewind_step() -> None:
    imp = LotteryTicket(
        PruneConfig(rounds=2, epochs_per_round=1, rewind="step", rewind_step=10_000, output_rate=None), verbose=False
    )
    with pytest.raises(ValueError, match="rewind_step: 10000 is not valid; round 1 ended before that step"):
        trainer(callbacks=[imp]).fit(PlainClassifier(), *synthetic())


def _fit(cb, model=None, **kwargs):
    model = model or PlainClassifier()
    trainer(callbacks=[cb], **kwargs).fit(model, *synthetic())
    return model


@pytest.mark.parametrize("prelude", ["", "import logging\nlogging.basicConfig()\n"],
                         ids=["no logging set up", "a user's basicConfig at WARNING"])
def test_round_lines_show_once_in_a_plain_script(prelude: str) -> None:
    script = (prelude + "from lottery.callbacks import LotteryTicket\nfrom lottery.init import InitSpec\n"
              "from lottery.config import PruneConfig\n"
              "from tests.lightning_helpers import PlainClassifier, synthetic, trainer\n"
              "prune = PruneConfig(rounds=2, epochs_per_round=1, output_rate=None)\n"
              "trainer(callbacks=[LotteryTicket(prune, init=InitSpec())], max_epochs=-1)"
              ".fit(PlainClassifier(), *synthetic())\n")
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout + out.stderr
    assert text.count("round 0/1 · 100.0 % remaining · val ") == 1 and text.count("round 1/1 · 80.") == 1, text
    assert "max_epochs` was not set" not in text  # max_epochs=-1, as the README says


def test_too_few_max_epochs_warn_at_fit_start() -> None:
    cb = LotteryTicket(PruneConfig(rounds=4, epochs_per_round=2, output_rate=None), init=InitSpec(), verbose=False)
    with pytest.warns(UserWarning, match=r"Trainer\(max_epochs=3\) stops before the last of 4 rounds"):
        _fit(cb, max_epochs=3)
    assert len(cb.history) == 1 and not cb.done  # what the warning announced


def test_init_none_on_a_module_without_a_spec_warns_that_it_reinitialises() -> None:
    with pytest.warns(UserWarning, match="re-initialised with InitSpec"):
        _fit(LotteryTicket(PruneConfig(rounds=1, epochs_per_round=1, output_rate=None), verbose=False))


def test_output_layer_is_explicit_and_checked() -> None:
    cb = LotteryTicket(
        PruneConfig(rounds=2, rate=0.2, output_rate=0.5, epochs_per_round=1),
        init=InitSpec(),
        output_layer="net.0.weight",
        verbose=False,
    )
    _fit(cb)
    density = {n: m.float().mean().item() for n, m in cb.masks.items()}
    assert density["net.0.weight"] == pytest.approx(0.5, abs=1e-3)
    assert density["net.4.weight"] == pytest.approx(0.8, abs=1e-2)
    model = PlainClassifier()
    model.lottery_output_layer = "net.2.weight"  # a model can name its own output layer (OpenLTH's way)
    cb = LotteryTicket(PruneConfig(rounds=2, output_rate=0.5, epochs_per_round=1), init=InitSpec(), verbose=False)
    _fit(cb, model)
    assert cb.masks["net.2.weight"].float().mean().item() == pytest.approx(0.5, abs=1e-2)
    with pytest.raises(ValueError, match=r"output_layer: 'net\.\*' matches 3 prunable tensors"):
        _fit(
            LotteryTicket(
                PruneConfig(rounds=2, output_rate=0.5, epochs_per_round=1),
                init=InitSpec(),
                output_layer="net.*",
                verbose=False,
            )
        )


def test_multihead_attention_projections_are_prunable_by_default() -> None:
    class Attn(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attn = nn.MultiheadAttention(8, 2)
            self.head = nn.Linear(8, 4)

    cb = LotteryTicket(PruneConfig(rounds=2, epochs_per_round=1, output_rate=None))
    cb.validate(Attn())
    assert list(cb.tensors.params) == ["attn.in_proj_weight", "attn.out_proj.weight", "head.weight"]
    assert isinstance(cb.tensors.params["attn.in_proj_weight"], torch.nn.Parameter)


def test_embedding_padding_rows_stay_zero_and_regenerate() -> None:
    net = nn.Module()
    net.emb = nn.Embedding(10, 4, padding_idx=3)
    net.plain = nn.Embedding(10, 4)
    initialize(net, InitSpec(seed=1))
    assert (net.emb.weight[3] == 0).all() and (net.emb.weight[[0, 1, 2, 4]] != 0).all()
    assert (net.plain.weight[3] != 0).all()
    assert torch.equal(initial_value(net, "emb.weight"), net.emb.weight)


def test_prune_regenerates_each_tensors_w0_once_per_round_not_once_per_member() -> None:
    net = initialize(stack(nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3)), 4),
                     [InitSpec(seed=s) for s in range(4)])
    cb = LotteryTicket(PruneConfig(rounds=2, criterion="movement", epochs_per_round=1, output_rate=None), verbose=False)
    cb.validate(net)
    cb._start(net)
    calls = []
    original = cb.initial
    cb.initial = lambda module, name, seed_shift=0: calls.append(name) or original(module, name, seed_shift)
    cb._next_level(net, 1)
    assert sorted(calls) == ["0.weight", "2.weight"]  # 2 tensors × 4 members: 2 regenerations, not 8

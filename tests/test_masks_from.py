"""Controls of a finished ticket (``prune.masks_from``): Frankle & Carbin's random reinit, random prune and
signed constant on the ticket's own masks, level by level, and the ticket reproduced from its masks."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from lottery.callbacks import LotteryTicket
from lottery.config import ConfigError, PruneConfig, load
from lottery.data import DATASETS
from lottery.init import InitSpec, initialize
from lottery.models import build
from lottery.pruning.levels import load_levels, save_level
from lottery.runner import run, run_dir
from tests.data_fixtures import REAL_ROOT
from tests.lightning_helpers import crash_at_epoch
from tests.test_train_cli import CONFIGS, QUICK, needs_mnist

ROUNDS = 4


class RoundStarts(pl.Callback):
    """The network's weights as each round (one epoch each) begins training."""

    def __init__(self) -> None:
        self.weights: list[dict[str, torch.Tensor]] = []

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.weights.append({n: p.detach().clone() for n, p in pl_module.model.named_parameters()})


def _cfg(tmp_path: Path, *more: str):
    return load(CONFIGS / "lenet300_mnist.yaml", [f"prune.rounds={ROUNDS}", "prune.epochs_per_round=1",
                                                  f"output_dir={tmp_path}", "seed=3", *QUICK, *more])


def _w0(seed: int) -> dict[str, torch.Tensor]:
    info = DATASETS["mnist"]
    net = initialize(build("lenet_300_100", info.shape, info.classes), InitSpec(seed=seed, scheme="xavier_normal"))
    return {n: p.detach() for n, p in net.named_parameters()}


@pytest.fixture(scope="module")
def ticket(tmp_path_factory: pytest.TempPathFactory, monkeypatch_module: None) -> tuple[Path, dict, RoundStarts]:
    tmp = tmp_path_factory.mktemp("imp")
    probe = RoundStarts()
    cfg = _cfg(tmp)
    return run_dir(cfg), run(cfg, callbacks=[probe]), probe


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    mp.setenv("LOTTERY_DATA", str(REAL_ROOT))
    yield
    mp.undo()


def _levels(path: Path) -> list[dict[str, torch.Tensor]]:
    return load_levels(path)


def _control(tmp_path: Path, source: Path, control: str | None) -> tuple[Path, dict, RoundStarts]:
    probe = RoundStarts()
    cfg = _cfg(tmp_path, f"prune.masks_from={source}", f"prune.control={control or 'null'}")
    return run_dir(cfg), run(cfg, callbacks=[probe]), probe


@needs_mnist
def test_imp_records_every_level_and_the_pruning_schedule(ticket) -> None:
    path, _, probe = ticket
    levels = _levels(path)
    assert len(levels) == ROUNDS and all(m.all() for m in levels[0].values())
    for r, masks in enumerate(levels):
        for name, mask in masks.items():  # F&C: hidden layers 20 %, output 10 % per round, exact counts
            rate = 0.1 if name == list(masks)[-1] else 0.2
            assert int(mask.sum()) == round(mask.numel() * (1 - rate) ** r), (r, name)
            if r:
                assert not (mask & ~levels[r - 1][name]).any()  # IMP masks are nested
            # the round trained with these masks: pruned weights are exactly zero from its first step
            w = probe.weights[r][name.removeprefix("model.")]
            assert (w[~mask] == 0).all() and (w[mask] != 0).all()


@needs_mnist
def test_ticket_from_its_masks_equals_the_imp_run(ticket, tmp_path: Path) -> None:
    source, imp, _ = ticket
    path, again, _ = _control(tmp_path, source, None)
    keys = ("remaining_pct", "test_acc", "val_acc", "val_loss", "best_val_loss", "epochs_to_best", "at_best/test_acc")
    assert [[r[k] for k in keys] for r in again["rounds"]] == [[r[k] for k in keys] for r in imp["rounds"]]
    assert again["rounds"][0]["control"] == "ticket-masks"
    for a, b in zip(_levels(path), _levels(source), strict=True):
        assert all(torch.equal(a[n], b[n]) for n in b)


@needs_mnist
def test_random_reinit_uses_the_ticket_masks_and_the_control_seeds_w0(ticket, tmp_path: Path) -> None:
    source, imp, ticket_probe = ticket
    path, res, probe = _control(tmp_path, source, "reinit")
    src, own = _levels(source), _levels(path)
    control_w0 = _w0(3 + 1_000_003)
    for r in range(ROUNDS):
        for name, mask in src[r].items():
            assert torch.equal(own[r][name], mask)  # exactly the ticket's masks, level by level
            short = name.removeprefix("model.")
            w = probe.weights[r][short]
            assert torch.equal(w, control_w0[short] * mask)  # the control seed's w0, rewound every level
            assert not torch.equal(w, ticket_probe.weights[r][short])
    assert [r["remaining_pct"] for r in res["rounds"]] == [r["remaining_pct"] for r in imp["rounds"]]
    assert res["rounds"][0]["control"] == "reinit" and res["rounds"][0]["seed"] == 3
    assert res["rounds"][0]["start"] == "xavier_normal/hash reinit"


@needs_mnist
def test_random_prune_keeps_each_layers_count_with_the_tickets_w0(ticket, tmp_path: Path) -> None:
    source, _, _ = ticket
    path, _, probe = _control(tmp_path, source, "random_prune")
    src, own = _levels(source), _levels(path)
    w0 = _w0(3)
    for r in range(ROUNDS):
        for name, mask in src[r].items():
            assert int(own[r][name].sum()) == int(mask.sum()), (r, name)
            if r:
                assert not torch.equal(own[r][name], mask)  # random, not the ticket's
            short = name.removeprefix("model.")
            assert torch.equal(probe.weights[r][short], w0[short] * own[r][name])


@needs_mnist
def test_signed_constant_uses_the_ticket_masks(ticket, tmp_path: Path) -> None:
    source, _, _ = ticket
    _, _, probe = _control(tmp_path, source, "signed_constant")
    src, w0 = _levels(source), _w0(3)
    for r in (0, ROUNDS - 1):
        for name, mask in src[r].items():
            short = name.removeprefix("model.")
            expected = torch.sign(w0[short]) * w0[short].double().std().float() * mask
            assert torch.equal(probe.weights[r][short], expected)


@needs_mnist
def test_bad_mask_sources_fail_before_training_naming_run_and_layer(ticket, tmp_path: Path) -> None:
    source, _, _ = ticket
    with pytest.raises(ConfigError, match="does not exist"):
        run(_cfg(tmp_path, f"prune.masks_from={tmp_path / 'nope'}"))
    with pytest.raises(ConfigError, match=f"holds {ROUNDS} levels"):
        run(_cfg(tmp_path, f"prune.masks_from={source}", f"prune.rounds={ROUNDS + 1}"))
    with pytest.raises(ConfigError, match="prune.rewind"):
        _cfg(tmp_path, f"prune.masks_from={source}", "prune.rewind=lr")
    # masks of another architecture: the error names the source and the layer
    foreign = tmp_path / "foreign"
    for r in range(ROUNDS):
        save_level(foreign / "masks", r, {"model.1.weight": torch.ones(300, 784, dtype=torch.bool),
                                          "model.3.weight": torch.ones(50, 300, dtype=torch.bool),
                                          "model.5.weight": torch.ones(10, 100, dtype=torch.bool)})
    with pytest.raises(ConfigError, match=r"foreign.*'model\.3\.weight'.*\(50, 300\)"):
        run(_cfg(tmp_path, f"prune.masks_from={foreign}"))
    assert not any(p.name.startswith("experiment") for p in tmp_path.iterdir())  # nothing written


@needs_mnist
def test_reinit_control_resumed_mid_run_ends_identical(ticket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source, _, _ = ticket
    _, whole, _ = _control(tmp_path / "whole", source, "reinit")
    # round 2 starts: rounds 0–1 are in the checkpoint, with round 2's masks
    crash_at_epoch(3, lambda: _control(tmp_path / "cut", source, "reinit"))
    path, resumed, probe = _control(tmp_path / "cut", source, "reinit")
    strip = ("wall_seconds",)
    assert [{k: v for k, v in r.items() if k not in strip} for r in resumed["rounds"]] == \
        [{k: v for k, v in r.items() if k not in strip} for r in whole["rounds"]]
    control_w0 = _w0(3 + 1_000_003)  # the resumed rounds still rewind to the control seed's w0
    mask = _levels(path)[ROUNDS - 1]["model.1.weight"]
    assert torch.equal(probe.weights[-1]["1.weight"], control_w0["1.weight"] * mask)


def test_the_callback_names_an_empty_or_missing_source(tmp_path: Path) -> None:
    (tmp_path / "empty" / "masks").mkdir(parents=True)
    with pytest.raises(ConfigError, match="prune.masks_from: .* holds no masks"):
        LotteryTicket(PruneConfig(rounds=None, masks_from=tmp_path / "empty", epochs_per_round=1, output_rate=None))
    with pytest.raises(ConfigError, match="prune.masks_from: .* does not exist"):
        LotteryTicket(PruneConfig(rounds=None, masks_from=tmp_path / "nowhere", epochs_per_round=1, output_rate=None))
    for r in range(3):
        save_level(tmp_path / "three" / "masks", r, {"w": torch.ones(2, 2, dtype=torch.bool)})
    assert (
        LotteryTicket(
            PruneConfig(rounds=None, masks_from=tmp_path / "three", epochs_per_round=1, output_rate=None)
        ).rounds
        == 3
    )  # rounds default to the source's levels

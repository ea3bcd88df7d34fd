"""A run whose loss or weights go non-finite is a failure (issue 20): it stops with one line saying what
diverged and when, exits 3, is recorded as diverged (never finished), and no mask is chosen from NaN."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from lottery.callbacks import LotteryTicket
from lottery.callbacks.divergence import non_finite_members, non_finite_metrics
from lottery.checkpoints import trained
from lottery.config import PruneConfig, load, resolve
from lottery.errors import EXIT_DIVERGED, Diverged
from lottery.runner import outcome, run, run_cells, run_dir
from lottery.safe_load import first_non_finite
from lottery.train import main
from tests.data_fixtures import REAL_ROOT, needs_mnist
from tests.lightning_helpers import PlainClassifier, synthetic, trainer
from tests.test_train_cli import CONFIGS, QUICK


def test_non_finite_values_are_found_per_member() -> None:
    w = torch.zeros(3, 4, 5)
    assert non_finite_members({"w": w}, 3) == {}
    w[1, 2, 3], w[2, 0, 0] = float("nan"), float("inf")
    assert non_finite_members({"w": w}, 3) == {1: "weights 'w' (1 non-finite values)",
                                              2: "weights 'w' (1 non-finite values)"}
    assert non_finite_members({"w": w}, None) == {None: "weights 'w' (2 non-finite values)"}
    metrics = {"val_loss": torch.tensor(float("nan")), "val_loss/m0": torch.tensor(0.3),
               "val_loss/m1": torch.tensor(float("inf")), "val_acc/m2": torch.tensor(float("nan"))}
    assert non_finite_metrics(metrics, 3) == {1: "val_loss/m1 inf"}  # the mean alone blames no member
    assert non_finite_metrics({"train_loss": 1.0, "val_loss": float("nan")}, None) == {None: "val_loss nan"}


class NaNAfterFirstEpoch(PlainClassifier):
    """Its weights turn NaN after the first epoch's last step, as an exploding step leaves them: before the
    round's end, where the masks of round 2 would be chosen."""

    def on_validation_start(self) -> None:
        if self.current_epoch == 0:
            with torch.no_grad():
                self.net[0].weight[0, :5] = float("nan")


def test_the_callback_stops_and_never_prunes_from_nan_weights() -> None:
    module = NaNAfterFirstEpoch()
    imp = LotteryTicket(PruneConfig(rounds=3, epochs_per_round=1, output_rate=None), verbose=False)
    trainer(callbacks=[imp], max_epochs=3).fit(module, *synthetic())
    assert imp.diverged is not None and imp.diverged["round"] == 0 and imp.diverged["what"] == "val_loss nan"
    assert not imp.done and imp.history == []  # the round is not recorded as a result
    assert all(bool(m.all()) for m in imp.masks.values())  # nothing pruned
    # the control: without the NaN the same fit prunes after round 1
    healthy = LotteryTicket(PruneConfig(rounds=2, epochs_per_round=1, output_rate=None), verbose=False)
    trainer(callbacks=[healthy], max_epochs=3).fit(PlainClassifier(), *synthetic())
    assert healthy.done and healthy.diverged is None and not all(bool(m.all()) for m in healthy.masks.values())


@needs_mnist
@pytest.mark.parametrize("override", ["optim.lr=1e300", "init.scale=1e39"])
def test_a_diverging_run_exits_3_and_is_recorded_as_diverged(override: str, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LOTTERY_DATA", str(REAL_ROOT))
    args = [str(CONFIGS / "lenet300_mnist.yaml"), "prune.rounds=3", "prune.epochs_per_round=1", override,
            f"output_dir={tmp_path}", *QUICK]
    assert main(args) == EXIT_DIVERGED
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("diverged: ") and "diverged in round 0, epoch 0" in err and "nan" in err.lower(), err
    path = run_dir(load(args[0], args[1:]))
    result = json.loads((path / "results.json").read_text())
    assert result["finished"] is False and result["diverged"]["round"] == 0 and result["rounds"] == []
    assert outcome(path) == "diverged" and not (path / "checkpoints" / "last.ckpt").exists()  # none was finite
    written = (path / "results.json").stat().st_mtime_ns
    assert main(args) == EXIT_DIVERGED  # rerunning says so again, without training
    assert "diverged in round 0" in capsys.readouterr().err
    assert (path / "results.json").stat().st_mtime_ns == written


class PoisonAtEpoch(pl.Callback):
    """Makes the weights NaN at the end of training epoch ``epoch`` (before the IMP callback looks)."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            with torch.no_grad():
                next(iter(pl_module.parameters())).fill_(float("nan"))


@needs_mnist
def test_a_run_that_diverges_later_keeps_its_last_finite_checkpoint(tmp_path: Path) -> None:
    cfg = load(str(CONFIGS / "lenet300_mnist.yaml"), ["prune.rounds=3", "prune.epochs_per_round=1",
                                                      f"output_dir={tmp_path}", f"data.root={REAL_ROOT}", *QUICK])
    with pytest.raises(Diverged, match="checkpoints/ keeps the last finite weights"):
        run(cfg, callbacks=[PoisonAtEpoch(1)])
    ckpt = run_dir(cfg) / "checkpoints" / "last.ckpt"
    saved = torch.load(ckpt, weights_only=True)
    assert saved["epoch"] == 0 and first_non_finite(trained(saved)) is None  # written after epoch 0, not the NaN of 1
    assert first_non_finite({"w": torch.tensor([1.0, float("nan")])}) == "1 in 'w'"


@needs_mnist
def test_a_diverging_member_is_dropped_and_the_rest_of_its_pack_is_exact(tmp_path: Path) -> None:
    def cells(out: Path, scales: list[float]) -> list:
        base = {"data": {"root": str(REAL_ROOT), "train_subset": 600, "val_size": 200, "test_subset": 300,
                         "download": False},
                "prune": {"rounds": 2, "epochs_per_round": 1}, "train": {"progress_bar": False, "threads": 1},
                "output_dir": str(out)}
        return [resolve({**base, "name": f"cell{i}", "seed": 7, "init": {"scheme": "xavier_normal", "scale": s}})
                for i, s in enumerate(scales)]

    packed = run_cells(cells(tmp_path / "packed", [1.0, 1e39]))
    alone = run_cells(cells(tmp_path / "alone", [1.0]))
    assert packed[1]["diverged"] and not packed[1]["finished"]
    assert packed[0]["finished"] and packed[0]["rounds"] == alone[0]["rounds"]  # as if it had trained alone

"""``python -m lottery.train`` end to end: real MNIST (a subset), results on disk, skip, resume, W&B offline."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import pytest

from lottery.classifier import Classifier
from lottery.config import load
from lottery.runner import run, run_dir
from lottery.train import main
from tests.data_fixtures import REAL_ROOT, fake_cifar10, needs_mnist

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
QUICK = ["data.train_subset=1200", "data.val_size=300", "data.test_subset=600", "train.progress_bar=false",
         "train.threads=1"]


def quick_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], Path]:
    """A 2-round LeNet-300-100 run on an MNIST subset under ``tmp_path``: its CLI arguments and run directory."""

    monkeypatch.setenv("LOTTERY_DATA", str(REAL_ROOT))
    args = [str(CONFIGS / "lenet300_mnist.yaml"), "prune.rounds=2", "prune.epochs_per_round=1",
            f"output_dir={tmp_path}", *QUICK]
    return args, run_dir(load(args[0], args[1:]))


@needs_mnist
def test_cli_end_to_end_on_real_mnist_with_wandb_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("LOTTERY_DATA", str(REAL_ROOT))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    args = [str(CONFIGS / "lenet300_mnist.yaml"), "prune.rounds=3", "prune.epochs_per_round=1",
            f"output_dir={tmp_path}", "wandb.enabled=true", *QUICK]
    with caplog.at_level(logging.INFO, logger="lottery"):
        assert main(args) == 0
    path = run_dir(load(args[0], args[1:]))
    rows = list(csv.DictReader((path / "rounds.csv").open()))
    assert [r["round"] for r in rows] == ["0", "1", "2"]
    remaining = [float(r["remaining_pct"]) for r in rows]
    assert remaining[0] == 100.0 and abs(remaining[1] - 80.04) < 0.05 and abs(remaining[2] - 64.08) < 0.05
    assert all(float(r["test_acc"]) > 0.75 for r in rows)  # 20 steps of Adam on 1,200 real digits
    assert rows[0]["model"] == "lenet_300_100" and rows[0]["scheme"] == "xavier_normal"
    assert all(int(r["epochs_to_best"]) == 1 and r["at_best/test_acc"] == r["test_acc"] for r in rows)
    results = json.loads((path / "results.json").read_text())
    assert results["finished"] and len(results["rounds"]) == 3
    assert results["config"]["prune"]["rounds"] == 3 and (path / "config.yaml").is_file()
    assert not (path / "checkpoints").exists()  # removed once finished (train.keep_checkpoint=false)
    metrics = next((path / "logs").glob("version_*/metrics.csv")).read_text()
    assert "lottery/remaining_pct" in metrics and "test_acc" in metrics
    offline = list((path / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(offline) == 1 and offline[0].stat().st_size > 0
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("round ")]
    assert len(lines) == 3 and lines[1].startswith("round 1/2 · 80.0 % remaining · val ")
    assert " · test " in lines[1] and lines[1].endswith(" %")

    # a finished run is not redone
    stamp = (path / "results.json").stat().st_mtime_ns
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="lottery"):
        assert main(args) == 0
    assert (path / "results.json").stat().st_mtime_ns == stamp
    assert any("is finished already" in r.getMessage() for r in caplog.records)


@needs_mnist
def test_interrupted_run_resumes_and_ends_identical(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOTTERY_DATA", str(REAL_ROOT))
    overrides = ["prune.rounds=2", "prune.epochs_per_round=2", "optim.milestones=[1]", "optim.gamma=0.5", *QUICK]
    whole = load(CONFIGS / "lenet300_mnist.yaml", [*overrides, f"output_dir={tmp_path / 'a'}"])
    cut = load(CONFIGS / "lenet300_mnist.yaml", [*overrides, f"output_dir={tmp_path / 'b'}"])
    expected = run(whole)["rounds"]

    original = Classifier.on_train_epoch_start

    def crash(self: Classifier) -> None:
        if self.current_epoch == 3:  # the last epoch of round 2, after last.ckpt of epoch 2 was written
            raise RuntimeError("simulated crash")

    monkeypatch.setattr(Classifier, "on_train_epoch_start", crash, raising=False)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run(cut)
    partial = json.loads((run_dir(cut) / "rounds.json").read_text())
    assert len(partial) == 1 and not (run_dir(cut) / "results.json").exists()
    assert (run_dir(cut) / "checkpoints" / "last.ckpt").is_file()
    monkeypatch.setattr(Classifier, "on_train_epoch_start", original, raising=False)
    resumed = run(cut)["rounds"]
    assert resumed == expected  # every metric of every round, bit for bit


def test_cli_on_synthetic_cifar10_with_conv2(tmp_path: Path) -> None:
    root = fake_cifar10(tmp_path / "data", per_batch=24)
    args = [str(CONFIGS / "conv2_cifar10.yaml"), f"data.root={root}", "data.val_size=20", "data.batch_size=25",
            "data.download=false", "prune.rounds=2", "prune.epochs_per_round=1", f"output_dir={tmp_path / 'runs'}",
            "train.progress_bar=false", "data.augment=true"]
    assert main(args) == 0
    rounds = json.loads((run_dir(load(args[0], args[1:])) / "results.json").read_text())["rounds"]
    conv = [v for k, v in rounds[1].items() if k.startswith("remaining_pct/model.0")]
    fc = [v for k, v in rounds[1].items() if k.startswith("remaining_pct/model.6")]
    assert conv == [pytest.approx(90.0, abs=0.1)] and fc == [pytest.approx(80.0, abs=0.01)]  # conv 10 %, fc 20 %


@needs_mnist
def test_several_steps_per_call_give_the_same_run_as_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOTTERY_DATA", str(REAL_ROOT))
    base = ["prune.rounds=2", "prune.epochs_per_round=1", "optim.warmup_steps=7", *QUICK]
    one = run(load(CONFIGS / "lenet300_mnist.yaml", [*base, "train.steps_per_call=1", f"output_dir={tmp_path}/1"]))
    many = run(load(CONFIGS / "lenet300_mnist.yaml", [*base, "train.steps_per_call=6", f"output_dir={tmp_path}/6"]))
    assert one["rounds"] == many["rounds"] and one["rounds"][1]["step"] == 40  # 20 optimizer steps per epoch

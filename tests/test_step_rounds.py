"""Rounds counted in optimizer steps with evaluations every N steps (Frankle & Carbin's 50K iterations and
validation every 100), on a small MNIST subset: rounds end exactly at their step count with that step's
evaluation, the early-stopping step is a multiple of N, the accuracy-vs-iteration curve is kept, and a kill
and resume ends identical."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lottery.config import load
from lottery.plot import iterations
from lottery.runner import run_dir
from lottery.train import main
from tests.lightning_helpers import crash_at_epoch
from tests.test_train_cli import CONFIGS, needs_mnist

# 1,200 images at batch 60: 20 steps per epoch, so 50-step rounds end mid-epoch
ARGS = ["prune.rounds=3", "prune.steps_per_round=50", "train.eval_every_steps=10", "train.steps_per_call=1",
        "data.train_subset=1200", "data.val_size=300", "data.test_subset=600", "train.progress_bar=false",
        "train.threads=1"]


def result(tmp_path: Path, name: str, crash: int | None = None) -> dict:
    args = [str(CONFIGS / "lenet300_mnist.yaml"), *ARGS, f"output_dir={tmp_path / name}"]
    if crash is not None:
        crash_at_epoch(crash, lambda: main(args))
    assert main(args) == 0
    return json.loads((run_dir(load(args[0], args[1:])) / "results.json").read_text())


@needs_mnist
def test_rounds_end_at_their_step_with_that_steps_evaluation(tmp_path: Path, mnist_root: Path) -> None:
    res = result(tmp_path, "a")
    rounds, curve = res["rounds"], res["curve"]
    assert [r["step"] for r in rounds] == [50, 100, 150]
    assert all(r["steps_to_best"] % 10 == 0 and 10 <= r["steps_to_best"] <= 50 for r in rounds)
    assert [(p["round"], p["step"]) for p in curve] == [(r, s) for r in range(3) for s in (10, 20, 30, 40, 50)]
    for r in rounds:  # the round's end-of-round metrics are its step-50 evaluation's
        last = next(p for p in curve if p["round"] == r["round"] and p["step"] == 50)
        assert last["test_acc"] == pytest.approx(r["test_acc"]) and last["val_loss"] == pytest.approx(r["val_loss"])
        best = min((p for p in curve if p["round"] == r["round"]), key=lambda p: p["val_loss"])
        assert best["step"] == r["steps_to_best"]

    paths = iterations([res], tmp_path / "fig", levels=(100.0, 64.0))  # F&C's Figure 3 from the curves
    svg = (tmp_path / "fig" / "iterations.svg").read_text()
    assert [p.name for p in paths] == ["iterations.png", "iterations.svg"]
    assert "100.0 %" in svg and "64.1 %" in svg and "80.0 %" not in svg and "training iteration" in svg


@needs_mnist
def test_a_step_counted_run_resumes_identical(tmp_path: Path, mnist_root: Path) -> None:
    whole = result(tmp_path, "whole")
    resumed = result(tmp_path, "resumed", crash=5)  # killed as epoch 5 starts: mid round 2
    for key in ("rounds", "curve"):
        assert resumed[key] == whole[key], key


@pytest.mark.parametrize(("overrides", "must"), [
    (["prune.steps_per_round=50"], "prune.steps_per_round: needs train.eval_every_steps"),
    (["prune.steps_per_round=50", "train.eval_every_steps=15"], "train.eval_every_steps: 15 is not valid"),
    (["prune.steps_per_round=48", "train.eval_every_steps=12", "train.steps_per_call=8"],
     "train.steps_per_call: 8 is not valid with train.eval_every_steps=12"),
    (["prune.steps_per_round=0", "train.eval_every_steps=10"], "prune.steps_per_round: 0"),
])
def test_step_schedules_that_cannot_end_rounds_on_an_evaluation_are_refused(
        overrides: list[str], must: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(CONFIGS / "lenet300_mnist.yaml"), *overrides, "--print-config"]) == 2
    assert must in capsys.readouterr().err

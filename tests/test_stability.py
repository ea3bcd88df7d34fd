"""Stability to SGD noise (issue 35 §2): the two copies, the line between them, and the CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from lottery.config import load
from lottery.environment import environment
from lottery.runner import run, run_dir
from lottery.stability import copies, error_rate, eval_data, instability, interpolate, level_masks, main
from tests.test_train_cli import CONFIGS, QUICK

pytestmark = pytest.mark.usefixtures("mnist_root")


def _cfg(*more: str):
    cfg = load(CONFIGS / "lenet300_mnist.yaml", [*QUICK, "prune.epochs_per_round=1", "train.threads=1", *more])
    cfg.train.steps_per_call = 1
    return cfg


def test_the_line_ends_are_the_trained_copies_and_other_orders_make_other_copies() -> None:
    cfg = _cfg()
    a, b = copies(cfg, 5, 30, (1, 2), {})
    for alpha, end in ((0.0, a), (1.0, b)):
        assert all(torch.equal(x, y) for x, y in zip(interpolate(a, b, alpha).state_dict().values(),
                                                     end.state_dict().values(), strict=True))
    test = eval_data(cfg)[0]
    value, errors = instability(a, b, 3, test)
    assert errors[0] == error_rate(a, test) and errors[-1] == error_rate(b, test)
    assert value == max(errors) - (errors[0] + errors[-1]) / 2
    assert any(not torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))
    same = copies(cfg, 5, 30, (1, 1), {})  # one batch order twice: one network, nothing unstable
    assert all(torch.equal(x, y) for x, y in zip(same[0].parameters(), same[1].parameters(), strict=True))
    assert instability(*same, 3, test)[0] == 0.0


def test_a_tickets_masks_keep_their_zeros_along_the_line(tmp_path: Path) -> None:
    ticket = _cfg("prune.rounds=2", f"output_dir={tmp_path}")
    run(ticket)
    masks = level_masks(str(run_dir(ticket)), 1)
    a, b = copies(_cfg(), 3, 20, (1, 2), masks)
    middle = dict(interpolate(a, b, 0.5).named_parameters())
    for name, m in masks.items():
        assert not middle[name][~m].any() and middle[name][m].any(), name


def test_the_cli_writes_the_table_and_refuses_steps_beyond_the_budget(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    args = [str(CONFIGS / "lenet300_mnist.yaml"), *QUICK, "train.threads=1", "--train-steps", "20", "--points", "3",
            "--out", str(tmp_path)]
    assert main([*args, "--steps", "0,40"]) == 2
    assert "--steps: 40 is beyond the 20 steps a copy trains" in capsys.readouterr().err
    assert main([*args, "--steps", "0,10"]) == 0
    rows = list(csv.DictReader((tmp_path / "stability.csv").open()))
    assert [r["k"] for r in rows] == ["0", "10"] and (tmp_path / "stability.png").is_file()
    assert len(list(csv.DictReader((tmp_path / "path.csv").open()))) == 6
    made = json.loads((tmp_path / "stability.json").read_text())  # what made the table, its environment whole
    assert made["steps"] == [0, 10] and made["train_steps"] == 20 and made["masks"] is None
    assert made["environment"] == environment() and made["config"]["train"]["threads"] == 1

"""scripts/budget_check.py: one level of a finished grid's cells retrained for longer, on the same masks."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest
import torch

from lottery.compare import main as compare
from lottery.environment import environment, environment_id
from lottery.grid import load_grid
from lottery.pack import member_epochs
from lottery.pruning.levels import load_levels
from lottery.rundir import run_dir
from scripts.budget_check import at_best
from scripts.budget_check import main as budget
from tests.data_fixtures import REAL_ROOT
from tests.test_compare import grid_file
from tests.test_train_cli import needs_mnist


def test_at_best_takes_the_minimum_validation_loss_within_the_budget_only() -> None:
    metrics = pd.DataFrame({"epoch": [0, 1, 2, 3], "val_loss": [0.5, 0.4, 0.45, 0.3],
                            "test_acc": [0.80, 0.85, 0.86, 0.90]})
    assert at_best(metrics, 3) == (85.0, 2)  # epoch 3's lower loss lies past a 3-epoch budget
    assert at_best(metrics, 4) == (90.0, 4)
    with pytest.raises(ValueError, match="incomplete"):
        at_best(metrics, 5)


def test_a_resumed_runs_later_log_version_wins_for_the_epochs_it_repeats(tmp_path: Path) -> None:
    for version, epochs, acc in ((0, [0, 1, 2], 0.5), (1, [2, 3], 0.7)):
        folder = tmp_path / "logs" / f"version_{version}"
        folder.mkdir(parents=True)
        pd.DataFrame({"epoch": epochs, "step": [10 * e for e in epochs], "val_loss": [1.0] * len(epochs),
                      "test_acc": [acc] * len(epochs)}).to_csv(folder / "metrics.csv", index=False)
    rows = pd.DataFrame(member_epochs(tmp_path / "logs", None))  # an unstacked run's own logs
    assert list(rows["epoch"]) == [0, 1, 2, 3] and list(rows["test_acc"]) == [0.5, 0.5, 0.7, 0.7]


@needs_mnist
def test_a_level_retrains_on_its_own_masks_and_a_rerun_skips_it(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    grid = grid_file(tmp_path, "g", starts=[{"scheme": "xavier_normal"}], seeds=[1],
                     methods=[{}, {"at_init": "snip"}], overrides={
                         "data": {"root": str(REAL_ROOT), "train_subset": 600, "val_size": 200,
                                  "test_subset": 400, "download": False},
                         "prune": {"rounds": 3, "epochs_per_round": 1}, "train": {"progress_bar": False,
                                                                                  "threads": 1}})
    assert compare([str(grid), "--no-plots"]) == 0
    out, work = tmp_path / "budget.csv", tmp_path / "work"
    args = [str(grid), "--level", "2", "--epochs", "3", "--methods", "imp", "snip", "--seeds", "1",
            "--out", str(out), "--work", str(work)]
    assert budget(args) == 0
    rows = list(csv.DictReader(out.open()))
    assert sorted(r["method"] for r in rows) == ["imp", "snip"]
    assert {r["environment"] for r in rows} == {environment_id(environment())}  # the retrained runs' own
    assert {r["start"] for r in rows} == {"xavier_normal/hash"}
    _, cells = load_grid(grid)
    for cell in cells:
        method = cell.config.prune.at_init or "imp"
        row = next(r for r in rows if r["method"] == method)
        source = run_dir(cell.config)
        again = next(p for p in work.iterdir() if p.name.startswith(f"{source.name}-L2-e3-"))
        kept, trained = load_levels(source)[2], load_levels(again)[0]
        assert set(kept) == set(trained) and all(torch.equal(kept[n], trained[n]) for n in kept)
        level = pd.read_csv(source / "rounds.csv").set_index("round").loc[2]
        assert float(row["remaining_pct"]) == pytest.approx(level["remaining_pct"], abs=1e-4)
        assert level["remaining_pct"] < 70 and float(row["grid_acc"]) == round(100 * level["at_best/test_acc"], 2)
        assert row["best_within"] == "1" and 1 <= int(row["best_all"]) <= 3 and row["epochs_within"] == "1"
    runs = sorted(p.name for p in work.iterdir())
    assert budget(args) == 0  # recorded: nothing retrains, nothing is rewritten
    assert sorted(p.name for p in work.iterdir()) == runs and len(list(csv.DictReader(out.open()))) == 2
    capsys.readouterr()
    assert budget([*args[:3], "--epochs", "1", *args[5:]]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--epochs: 1 is not longer than the grid's epochs_per_round (1)" in err[0]
    assert budget([str(grid), "--level", "3", *args[3:]]) == 2  # the grid trained levels 0–2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--level 3:" in err[0] and "round-03.npz" in err[0]
    assert budget([*args[:7], "synflow", *args[7:]]) == 0  # a method the grid lacks is left out ...
    assert budget([*args[:5], "--methods", "synflow", *args[8:]]) == 2  # ... but one that picks nothing is refused
    assert "--methods synflow --seeds 1: no cell of" in capsys.readouterr().err
    snip = next(c.config for c in cells if c.config.prune.at_init == "snip")
    (run_dir(snip) / "results.json").unlink()  # as if the grid were still training it
    assert budget([*args[:3], "--epochs", "4", *args[5:]]) == 0
    assert f"snip seed 1: {run_dir(snip)} has not finished; skipped" in capsys.readouterr().out
    assert sorted(r["method"] + r["epochs"] for r in csv.DictReader(out.open())) == ["imp3", "imp4", "snip3"]

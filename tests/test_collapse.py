"""Layer collapse past a grid's levels (SynFlow's point): the first level of a cell's schedule at which its
method leaves a layer empty, checked against direct calls, and iterated SynFlow outlasting magnitude."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from lottery.collapse import first_collapse, main
from lottery.environment import environment_id
from lottery.grid import load_grid
from tests.test_compare import REAL_ROOT, grid_file, needs_mnist


@needs_mnist
def test_magnitude_collapses_before_synflow_and_the_level_is_the_first(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    ways = [{"at_init": "magnitude", "scope": "global"}, {"at_init": "synflow", "scope": "global"}]
    overrides = {"data": {"root": str(REAL_ROOT), "train_subset": 600, "val_size": 200, "test_subset": 400,
                          "download": False},
                 "prune": {"rounds": 2, "epochs_per_round": 1, "rate": 0.5, "output_rate": None}}
    grid = grid_file(tmp_path, "g", starts=[{"scheme": "xavier_normal"}], seeds=[1], methods=ways,
                     results_dir=str(tmp_path / "res"), overrides=overrides, models=["tests.custom_model:TinyNet"])
    assert main([str(grid), "--levels", "12"]) == 0
    rows = list(csv.DictReader((tmp_path / "res" / "collapse.csv").open()))
    assert [r["method"] for r in rows] == ["magnitude", "synflow"] and rows[0]["forced"] == "False"
    magnitude, synflow = (int(r["level"]) if r["level"] else 99 for r in rows)
    assert magnitude < synflow  # Tanaka et al.: iterated SynFlow avoids the collapse magnitude pruning meets
    assert "collapses at level" in capsys.readouterr().out
    made = json.loads((tmp_path / "res" / "collapse.json").read_text())  # what made the rows, whole
    assert {r["environment"] for r in rows} == {environment_id(made["environment"])} and made["levels"] == 12
    # the level is the first: one level earlier, nothing is empty
    cell = load_grid(grid)[1][0]
    assert first_collapse(cell, magnitude - 1)["level"] is None
    assert first_collapse(cell, magnitude)["level"] == magnitude


def test_a_grid_without_pruning_at_init_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(grid_file(tmp_path, "g"))]) == 2
    assert "has no pruning-at-init cell" in capsys.readouterr().err

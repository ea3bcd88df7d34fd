"""A stability study over a compare grid's cells: records per (seed, subnetwork, level, k), skipped on a rerun,
the masks of the grid's own cells, and one-line errors before anything trains."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import yaml

import lottery.stability_grid as study_module
from lottery.compare import main as compare
from lottery.environment import environment_id
from lottery.stability_grid import load_study, main
from tests.test_compare import grid_file, needs_mnist
from tests.test_train_cli import CONFIGS


def _study(tmp_path: Path, grid: Path, **changes: object) -> Path:
    data = {"name": "st", "grid": str(grid), "subnetworks": ["ticket", "random_prune"], "levels": [0, 1],
            "seeds": [1], "steps": [0, 5], "train_steps": 20, "points": 3, "results_dir": str(tmp_path / "st"),
            **changes}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@needs_mnist
def test_a_study_measures_each_network_once_and_says_what_it_lacks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    grid = grid_file(tmp_path, "g", starts=[{"scheme": "xavier_normal"}], seeds=[1], controls=["random_prune"])
    study = _study(tmp_path, grid)
    assert compare([str(grid), "--no-plots"]) == 0
    masks = tmp_path / "g" / "cells"
    made = {p: p.stat().st_mtime_ns for p in masks.rglob("round-*.npz")}
    assert main([str(study)]) == 0
    assert {p: p.stat().st_mtime_ns for p in masks.rglob("round-*.npz")} == made  # the grid's masks, not retrained
    rows = list(csv.DictReader((tmp_path / "st" / "stability.csv").open()))
    assert [(r["subnetwork"], r["level"], r["k"]) for r in rows] == [
        ("dense", "0", "0"), ("dense", "0", "5"), ("random_prune", "1", "0"), ("random_prune", "1", "5"),
        ("ticket", "1", "0"), ("ticket", "1", "5")]
    assert rows[0]["remaining_pct"] == "100.0" and float(rows[-1]["remaining_pct"]) == pytest.approx(80, abs=0.5)
    assert rows[2]["remaining_pct"] == rows[4]["remaining_pct"]  # random pruning keeps the ticket's counts
    record = json.loads((tmp_path / "st" / "cells" / "ticket-l1-s1-k5.json").read_text())
    assert len(record["errors"]) == 3 and record["error_b"] == record["errors"][-1] and record["train_steps"] == 20
    assert (tmp_path / "st" / "stability.png").is_file()
    # each record holds its environment whole, the table its id, environments.json the id's environment
    envs = json.loads((tmp_path / "st" / "environments.json").read_text())
    assert {r["environment"] for r in rows} == set(envs) and envs[rows[0]["environment"]]["runs"] == 6
    assert envs[rows[0]["environment"]]["environment"] == record["environment"]
    assert environment_id(record["environment"]) == rows[0]["environment"]
    # records from before they held it whole name only the id: the file's earlier entry still describes it
    for path in (tmp_path / "st" / "cells").glob("*.json"):
        path.write_text(json.dumps({**json.loads(path.read_text()), "environment": rows[0]["environment"]}))
    earlier = {rows[0]["environment"]: {"runs": 6, "environment": {"python": "from the earlier file"}}}
    (tmp_path / "st" / "environments.json").write_text(json.dumps(earlier))
    study_module.table(load_study(study)[0])
    assert json.loads((tmp_path / "st" / "environments.json").read_text()) == earlier

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("a recorded network was measured again")

    monkeypatch.setattr(study_module, "copies", no_training)
    assert main([str(study)]) == 0
    assert "0 left to measure" in capsys.readouterr().out
    # records gathered from elsewhere, some missing: --table rebuilds the table from those there, trains nothing
    (tmp_path / "st" / "cells" / "dense-l0-s1-k5.json").rename(tmp_path / "aside.json")
    assert main([str(study), "--table"]) == 0
    assert "1 left to measure" in capsys.readouterr().out
    assert len(list(csv.DictReader((tmp_path / "st" / "stability.csv").open()))) == 5
    (tmp_path / "aside.json").rename(tmp_path / "st" / "cells" / "dense-l0-s1-k5.json")
    monkeypatch.undo()

    # a new machine: the grid's masks are not there; the study trains the cells it needs with the grid's own
    # launcher on the workers asked for (the ticket, then its control), then measures in the pool
    shutil.rmtree(tmp_path / "g")
    (tmp_path / "st" / "cells" / "random_prune-l1-s1-k5.json").unlink()
    assert main([str(study), "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert "training grid cells 0, 1 (" in out and "1 left to measure" in out
    assert len(list((tmp_path / "g" / "cells").rglob("round-*.npz"))) == len(made)
    again = list(csv.DictReader((tmp_path / "st" / "stability.csv").open()))
    assert again == rows  # the same masks, the same measurement, on two workers: deterministic


@pytest.mark.parametrize(("change", "message"), [
    ({"levels": [0, 7]}, "stability.levels[1]: 7 is not valid; give 0 to 1"),
    ({"seeds": [3]}, "stability.seeds[0]: 3 is not valid; give one of [1]"),
    ({"subnetworks": ["reinit"]}, "stability.subnetworks[0]: 'reinit' is not valid; give ticket or one of the grid's"),
    ({"orders": [1, 1]}, "stability.orders / points: [1, 1] / 3: give two different batch-order seeds"),
    ({"stepz": [0]}, "stability.stepz: unknown key (did you mean 'steps'?)"),
])
def test_bad_studies_say_which_field(change: dict, message: str, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    grid = grid_file(tmp_path, "g", starts=[{"scheme": "xavier_normal"}], seeds=[1], controls=["random_prune"])
    assert main([str(_study(tmp_path, grid, **change))]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err, err
    assert not (tmp_path / "st").exists()


@pytest.mark.parametrize(("text", "message"), [
    ('{"k": 0', "not a JSON record (JSONDecodeError); move it away and rerun to measure it again"),
    ('["a list"]', "not a JSON record (list)"),
    ('{"k": 0, "instability": 0.1}', "it lacks ['model', 'dataset', 'seed',"),
])
def test_a_damaged_record_is_named_before_anything_trains(text: str, message: str, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    grid = grid_file(tmp_path, "g", starts=[{"scheme": "xavier_normal"}], seeds=[1], controls=["random_prune"])
    record = tmp_path / "st" / "cells" / "ticket-l1-s1-k5.json"
    record.parent.mkdir(parents=True)
    record.write_text(text)
    assert main([str(_study(tmp_path, grid))]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {record}: ") and message in err and "\n" not in err, err
    assert not (tmp_path / "g").exists() and record.read_text() == text  # nothing trained, the record kept


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("stability_*.yaml")), ids=lambda p: p.stem)
def test_shipped_studies_load_with_their_grids(path: Path) -> None:
    study, grid, cells, networks = load_study(path)
    assert study.results_dir == f"results/{study.name}" and len(networks) == 45
    assert {n.cell.config.seed for n in networks} == set(study.seeds) <= set(grid.seeds)
    for n in networks:  # tickets are the start's plain IMP cells; a control reads the same seed's ticket
        ticket = n.cell if n.cell.source is None else cells[n.cell.source]
        assert ticket.config.prune.at_init is None and ticket.config.seed == n.seed
        assert (n.cell.source is None) == (n.subnetwork in ("dense", "ticket"))

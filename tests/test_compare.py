"""The grid runner: bad grids fail before any cell, interrupted grids resume to the same table, W&B offline
files hold every cell's curve, sweeps and gathering rebuild the same results."""

from __future__ import annotations

import csv
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import pytorch_lightning as pl
import yaml

from lottery.atomic import write_json
from lottery.compare import main
from lottery.grid import load_grid
from lottery.rundir import run_dir, run_lock
from lottery.tracking import offline_history, rounds_from_wandb
from lottery.train import main as train
from tests.data_fixtures import REAL_ROOT, needs_mnist
from tests.lightning_helpers import crash_at_epoch

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def grid_file(tmp_path: Path, out: str, **changes: object) -> Path:
    grid = {
        "name": "tiny",
        "base": str(CONFIGS / "lenet300_mnist.yaml"),
        "overrides": {
            "data": {"root": str(REAL_ROOT), "train_subset": 600, "val_size": 200, "test_subset": 400,
                     "download": False},
            "prune": {"rounds": 2, "epochs_per_round": 1},
            "train": {"progress_bar": False, "threads": 1},
        },
        "starts": [{"scheme": "xavier_normal"}, {"scheme": "kaiming_uniform", "scale": 0.5}],
        "seeds": [1, 2],
        "output_dir": str(tmp_path / out),
    }
    for key, value in changes.items():
        grid[key] = value
    path = tmp_path / f"{out}.yaml"
    path.write_text(yaml.safe_dump(grid))
    return path


BAD = [
    ({"seeds": []}, "grid.seeds: the axis is empty"),
    ({"starts": []}, "grid.starts: the axis is empty"),
    ({"models": []}, "grid.models: the axis is empty"),
    ({"starts": [{"scheme": "xavier_normal"}, {"scheme": "xavier_normal", "scale": 1.0}]},
     "grid.starts[1]: duplicate start xavier_normal/hash (seed 1, lenet_300_100); it repeats starts[0]"),
    ({"starts": [{"scheme": "he_normal"}]}, "grid.starts[0] ({'scheme': 'he_normal'}): init.scheme: 'he_normal' is"),
    ({"starts": [{"schema": "xavier_normal"}]}, "grid.starts[0].schema: unknown key; a start sets scheme, scale"),
    ({"sources": ["quantum"]}, "init.source: 'quantum' is not valid; choose one of hash, sobol, sobol-paper, torch"),
    ({"base": ""}, "grid.base: missing"),
    ({"seed": [1]}, "seed: unknown key (did you mean 'seeds'?)"),
    ({"members_per_process": 0}, "grid.members_per_process: 0 is not valid; use an integer ≥ 1"),
    ({"controls": ["reinit"], "controls_on": [2]},
     "grid.controls_on[0]: 2 is not valid; give the index of a start (0 to 1)"),
    ({"controls_on": [0]}, "grid.controls_on: [0] names starts for controls, but grid.controls is empty"),
    ({"controls": ["reinit"], "controls_on": ["0"]}, "grid.controls_on[0]: '0' is not valid"),
    ({"launcher": {"name": "pbs"}}, "grid.launcher.name: 'pbs' is not valid; choose one of local, slurm"),
    ({"methods": [{}, {"at_init": "snap"}]}, "grid.methods[1] ({'at_init': 'snap'}): prune.at_init: 'snap' is not"),
    ({"methods": [{"rate": 0.5}]},
     "grid.methods[0].rate: unknown key; a method sets at_init, at_init_batches, invert, scope"),
    ({"methods": [{}, {"invert": False}]}, "grid.methods[1]: duplicate method imp ({'invert': False}); it repeats"),
    ({"launcher": {"time_min": 0}}, "grid.launcher.time_min: 0 is not valid; use an integer ≥ 1"),
    ({"launcher": {"partoition": "gpu"}}, "grid.launcher.partoition: unknown key (did you mean 'partition'?)"),
    ({"launcher": {"sbatch": {"array": "0-3"}}}, "grid.launcher.sbatch.array: the launcher sets it itself"),
    ({"launcher": {"sbatch": {"constraint": "a100\n#SBATCH --wrap=rm"}}},
     "grid.launcher.sbatch.constraint: 'a100\\n#SBATCH --wrap=rm' holds a line break; give one line"),
    ({"launcher": {"sbatch": {"--mail-type": "END"}}}, "grid.launcher.sbatch.--mail-type: not an sbatch option"),
]


def test_controls_on_gives_controls_to_the_named_starts_only(tmp_path: Path) -> None:
    every_start = load_grid(grid_file(tmp_path, "all", controls=["reinit"]))[1]
    first = load_grid(grid_file(tmp_path, "first", controls=["reinit"], controls_on=[1]))[1]
    controls = [c for c in first if c.source is not None]
    assert len(every_start) == 8 and len(first) == 6 and len(controls) == 2
    assert all(first[c.source].config.init.scheme == "kaiming_uniform" for c in controls)
    assert [c.config.name for c in first[:4]] == [c.config.name for c in every_start[:4]]  # the IMP cells unchanged


def test_methods_axis_labels_each_method_and_the_controls_of_its_masks(tmp_path: Path) -> None:
    methods = [{}, {"at_init": "snip"}, {"at_init": "snip", "invert": True}]
    plain = load_grid(grid_file(tmp_path, "plain", controls=["reinit"]))[1]
    _, cells = load_grid(grid_file(tmp_path, "ways", methods=methods, controls=["reinit"]))
    assert len(cells) == 3 * 4 * 2
    assert [c.config.name for c in cells[:4]] == [c.config.name for c in plain[:4]]  # IMP cells: names unchanged
    assert [c.config.run_name for c in cells[:4]] == [c.config.run_name for c in plain[:4]]
    assert cells[4].label == "lenet_300_100 xavier_normal/hash snip seed 1"
    assert cells[8].config.name == "lenet_300_100-xavier_normal-hash-snip-inverted-s1"
    controls = {cells[c.source].label: c for c in cells if c.source is not None}
    snip_reinit = controls["lenet_300_100 xavier_normal/hash snip seed 1"]
    assert snip_reinit.label == "lenet_300_100 xavier_normal/hash snip reinit seed 1"
    assert snip_reinit.config.prune.at_init is None and snip_reinit.config.prune.masks_of == "snip"  # masks read
    assert controls["lenet_300_100 xavier_normal/hash seed 1"].config.prune.masks_of is None
    assert controls["lenet_300_100 xavier_normal/hash snip-inverted seed 1"].config.prune.invert is False
    assert len({c.config.run_name for c in cells}) == len(cells)


@needs_mnist
def test_a_grid_of_methods_matches_each_imp_level_and_trains_the_controls_of_pai_masks(tmp_path: Path) -> None:
    path = grid_file(tmp_path, "ways", starts=[{"scheme": "xavier_normal"}], seeds=[1], members_per_process=2,
                     methods=[{}, {"at_init": "synflow"}], controls=["random_prune"])
    assert main([str(path), "--no-plots"]) == 0
    rows = list(csv.DictReader((tmp_path / "ways" / "results.csv").open()))
    levels: dict[str, list[str]] = {}
    for r in rows:
        levels.setdefault(r["start"], []).append(r["remaining_pct"])
    assert set(levels) == {"xavier_normal/hash", "xavier_normal/hash random_prune", "xavier_normal/hash synflow",
                           "xavier_normal/hash synflow random_prune"}
    assert len({tuple(v) for v in levels.values()}) == 1  # every method at IMP's densities
    assert {r["control"] for r in rows} == {"ticket", "random_prune", "synflow", "synflow random_prune"}


@pytest.mark.parametrize(("change", "message"), BAD, ids=[m for _, m in BAD])
def test_bad_grids_fail_before_any_cell(change: dict, message: str, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    path = grid_file(tmp_path, "bad", **change)
    assert main([str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err, err
    assert not (tmp_path / "bad").exists()


def test_slurm_launcher_without_sbatch_says_so_before_anything_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert main([str(grid_file(tmp_path, "nosbatch")), "--launcher", "slurm"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("error: grid.launcher.name: 'slurm' needs sbatch here; run on a SLURM login node (or use "
                   "--launcher local)") and not (tmp_path / "nosbatch").exists()


def test_status_of_a_grid_run_here(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without a cluster: not started, then finished cells and an interrupted one (a checkpoint, no job)."""
    path = grid_file(tmp_path, "st", seeds=[1])
    assert main([str(path), "--status"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "2 cells: 2 not started" and not (tmp_path / "st").exists()
    assert main([str(path), "--no-plots", "overrides.train.keep_checkpoint=true"]) == 0
    grid, cells = load_grid(path)
    (run_dir(cells[1].config) / "results.json").unlink()  # as if stopped after its last checkpoint
    assert main([str(path), "--status"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith(" · finished · " + str(run_dir(cells[0].config)))
    assert " · interrupted · resumes from " in lines[1] and lines[2] == "2 cells: 1 finished, 1 interrupted"
    # a process training here now: its run directory's lock, or a pack's lock naming its members
    with run_lock(run_dir(cells[1].config)):
        assert main([str(path), "--status"]) == 0
    assert capsys.readouterr().out.splitlines()[1].endswith(f" · running · process {os.getpid()}")
    pack = run_dir(cells[1].config).parent / "packs" / "p+1"
    write_json(pack / "pack.json", {"members": [c.config.run_name for c in cells], "exact": True})
    with run_lock(pack):
        assert main([str(path), "--status"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "2 cells: 1 finished, 1 running"  # a result wins
    assert main([str(path), "--status"]) == 0  # the lock released: nobody is training them
    assert capsys.readouterr().out.splitlines()[-1] == "2 cells: 1 finished, 1 interrupted"


def test_shipped_grids_have_the_published_shape() -> None:
    grid, cells = load_grid(CONFIGS / "compare_wijnja2020.yaml")
    assert len(cells) == 8 * 11 and sorted({c.config.seed for c in cells}) == list(range(42, 53))
    assert {c.config.prune.rounds * c.config.prune.epochs_per_round for c in cells} == {100}
    assert {c.config.init_spec().label for c in cells} >= {"xavier_normal×0.5/hash", "kaiming_uniform/hash"}
    _, sobol = load_grid(CONFIGS / "compare_sobol.yaml")
    assert {c.config.init.source for c in sobol} == {"sobol", "sobol-paper"} and len(sobol) == 176
    _, quick = load_grid(CONFIGS / "compare_quick.yaml")
    assert len(quick) == 24 and quick[0].config.prune.epochs_per_round == 1


@needs_mnist
def test_interrupted_grid_resumes_without_redoing_cells_and_gives_the_same_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    whole = grid_file(tmp_path, "whole")
    assert main([str(whole)]) == 0
    cut = grid_file(tmp_path, "cut")
    crash_at_epoch(6, lambda: main([str(cut)]))  # cell 3, epoch 2: cells 1–2 finished, cell 3 has a checkpoint
    with caplog.at_level(logging.INFO, logger="lottery"):
        assert main([str(cut)]) == 0
    messages = [r.getMessage() for r in caplog.records]
    assert sum("finished already, skipped" in m for m in messages) == 2
    assert any("resuming from" in m for m in messages)
    table = (tmp_path / "cut" / "results.csv").read_text()
    assert table == (tmp_path / "whole" / "results.csv").read_text()
    assert len(table.strip().splitlines()) == 1 + 2 * 2 * 2  # header + starts × seeds × rounds
    for name in ("accuracy", "sleeping", "early_stop"):
        for ext in ("png", "svg"):
            assert (tmp_path / "cut" / f"{name}.{ext}").stat().st_size > 5000
    stats = (tmp_path / "cut" / "stats.csv").read_text().strip().splitlines()
    assert len(stats) == 1 + 2  # one pair of starts at each of 2 levels
    assert "## lenet_300_100, round 1: 80.0 % of weights remaining" in (tmp_path / "cut" / "stats.md").read_text()

    # the same table again from the run directories alone, gathered (e.g. copied from other machines)
    assert main([str(cut), "--gather", str(tmp_path / "whole" / "cells"), "--no-plots"]) == 0
    assert (tmp_path / "cut" / "results.csv").read_text() == table


@needs_mnist
def test_wandb_offline_holds_every_cells_curve_and_a_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    path = grid_file(tmp_path, "wb", seeds=[1], members_per_process=2)  # both cells as one stacked pack
    data = yaml.safe_load(path.read_text())
    data["overrides"]["wandb"] = {"enabled": True, "project": "lottery-tests"}
    path.write_text(yaml.safe_dump(data))
    assert main([str(path), "--no-plots"]) == 0
    files = sorted((tmp_path / "wb" / "cells").rglob("offline-run-*/run-*.wandb"))
    assert len(files) == 2
    for f in files:
        rounds = rounds_from_wandb(f)
        assert [r["round"] for r in rounds] == [0, 1]
        assert rounds[0]["remaining_pct"] == 100 and abs(rounds[1]["remaining_pct"] - 80.04) < 0.05
        assert all(0.5 < r["test_acc"] <= 1 for r in rounds)
        history = offline_history(f)
        keys = {k for row in history for k in row}
        assert {"rounds/_type", "sparsity_accuracy_table/_type"} <= keys  # the table and the line chart
        epochs = [row for row in history if "val_loss" in row]  # the member's own per-epoch curves
        assert [row["epoch"] for row in epochs] == [0, 1] and all(0.5 < row["val_acc"] <= 1 for row in epochs)
        assert {"train_loss", "test_acc", "trainer/global_step"} <= keys
    summary = sorted((tmp_path / "wb").glob("wandb/offline-run-*-summary/run-*.wandb"))
    assert len(summary) == 1
    logged: set[str] = set()
    for _ in range(60):  # wandb's service may still be flushing the run it finished last (seen once under load)
        logged = {k for row in offline_history(summary[0]) for k in row}
        if logged:
            break
        time.sleep(0.5)
    assert "summary/lenet_300_100/xavier_normal/hash/mean_test_acc" in logged
    # the table rebuilt from the W&B files equals the one from the run directories
    table = (tmp_path / "wb" / "results.csv").read_text()
    assert main([str(path), "--gather-wandb", str(tmp_path / "wb" / "cells"), "--no-plots"]) == 0
    rebuilt = (tmp_path / "wb" / "results.csv").read_text()
    assert rebuilt.splitlines()[1:] == table.splitlines()[1:] or rebuilt == table


def test_sweep_export_and_single_cells(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = grid_file(tmp_path, "sw")
    assert main([str(path), "--wandb-sweep", str(tmp_path / "sweep.yaml")]) == 0
    sweep = yaml.safe_load((tmp_path / "sweep.yaml").read_text())
    assert sweep["method"] == "grid" and sweep["parameters"]["cell"]["values"] == [0, 1, 2, 3]
    assert sweep["command"][:5] == ["${env}", "python", "-m", "lottery.compare", str(path)]
    assert sweep["command"][-1] == "${args}"
    capsys.readouterr()
    assert main([str(path), "--list"]) == 0
    listed = capsys.readouterr().out.strip().splitlines()
    assert len(listed) == 4 and listed[3].startswith("3\tlenet_300_100 kaiming_uniform×0.5/hash seed 2")
    assert main([str(path), "--cell", "9"]) == 2
    assert "--cell: 9 is not valid; the grid has cells 0..3" in capsys.readouterr().err


@needs_mnist
def test_parallel_workers_give_the_serial_one_thread_table(tmp_path: Path, capfd: pytest.CaptureFixture[str],
                                                           caplog: pytest.LogCaptureFixture) -> None:
    # a start and its reinit control: a worker must wait for a ticket's masks before its control starts
    axes = {"starts": [{"scheme": "xavier_normal"}], "controls": ["reinit"]}
    serial = grid_file(tmp_path, "serial", **axes)  # the grid's overrides already run cells on 1 thread
    parallel = grid_file(tmp_path, "parallel", **axes)
    with caplog.at_level(logging.INFO, logger="lottery"):
        assert main([str(serial), "--no-plots"]) == 0
    # a ticket's control runs as soon as its masks exist, before the next ticket: a sitting that ends early
    # leaves no ticket whose control must train it again on a new machine
    started = [r.getMessage().split(" · ")[0] for r in caplog.records if r.getMessage().endswith("· starting")]
    assert started == ["cell 1/4", "cell 3/4", "cell 2/4", "cell 4/4"], started
    capfd.readouterr()
    assert main([str(parallel), "--no-plots", "--workers", "2"]) == 0
    err = capfd.readouterr().err  # the workers filter Lightning's warnings as the parent does
    assert "exists and is not empty" not in err and "LeafSpec" not in err, err[-2000:]
    assert (tmp_path / "parallel" / "results.csv").read_text() == (tmp_path / "serial" / "results.csv").read_text()
    assert main([str(parallel), "--workers", "0"]) == 2


@needs_mnist
def test_controls_axis_and_committed_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             caplog: pytest.LogCaptureFixture) -> None:
    axes = {"starts": [{"scheme": "xavier_normal"}], "controls": ["reinit", "random_prune"]}
    packed = grid_file(tmp_path, "packed", members_per_process=2, results_dir=str(tmp_path / "res-packed"), **axes)
    alone = grid_file(tmp_path, "alone", results_dir=str(tmp_path / "res-alone"), **axes)
    _, cells = load_grid(packed)
    assert [c.source for c in cells] == [None, None, 0, 1, 0, 1]
    assert cells[2].label == "lenet_300_100 xavier_normal/hash reinit seed 1"
    assert main([str(packed), "--no-plots"]) == 0
    assert main([str(alone), "--no-plots"]) == 0
    table = (tmp_path / "res-packed" / "results.csv").read_text()
    assert table == (tmp_path / "res-alone" / "results.csv").read_text()  # stacked controls: bit for bit
    rows = table.strip().splitlines()
    assert len(rows) == 1 + 6 * 2
    assert {r.split(",")[6] for r in rows[1:]} == {"ticket", "reinit", "random_prune"}
    assert "xavier_normal/hash reinit" in (tmp_path / "res-packed" / "stats.md").read_text()
    records = sorted((tmp_path / "res-packed" / "cells").glob("*/results.json"))
    assert len(records) == 6 and all(r.stat().st_size < 100_000 for r in records)

    # a clean clone: only the committed records are there; nothing trains, the table is the same
    shutil.rmtree(tmp_path / "packed")

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("a recorded cell was trained again")

    monkeypatch.setattr(pl.Trainer, "fit", no_training)
    with caplog.at_level(logging.INFO, logger="lottery"):
        assert main([str(packed), "--no-plots"]) == 0
    assert sum("recorded in" in r.getMessage() for r in caplog.records) == 6
    assert (tmp_path / "res-packed" / "results.csv").read_text() == table
    # gathering never trains either, even when the grid's own cells are not finished
    fresh = grid_file(tmp_path, "fresh", **axes)  # none of its cells has run
    assert main([str(fresh), "--gather", str(tmp_path / "res-packed" / "cells"), "--no-plots"]) == 0
    assert (tmp_path / "fresh" / "results.csv").read_text() == table and not (tmp_path / "fresh" / "cells").exists()
    monkeypatch.undo()

    # a control whose record is missing: its IMP cell's masks are gone too, so that cell runs again first
    control_record = next(r for r in records if "reinit" in r.parent.name and "-s2-" in r.parent.name)
    shutil.rmtree(control_record.parent)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="lottery"):
        assert main([str(packed), "--no-plots"]) == 0
    assert any("runs again: its controls need its masks" in r.getMessage() for r in caplog.records)
    assert (tmp_path / "res-packed" / "results.csv").read_text() == table
    bad = grid_file(tmp_path, "bad", controls=["shuffle"])
    assert main([str(bad)]) == 2


def test_overrides_may_follow_the_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = grid_file(tmp_path, "mixed")
    assert main([str(path), "--list", "seeds=[7]"]) == 0  # argparse alone would refuse this order
    listed = capsys.readouterr().out.strip().splitlines()
    assert len(listed) == 2 and all(line.split("\t")[1].endswith("seed 7") for line in listed)
    assert train([str(CONFIGS / "lenet300_mnist.yaml"), "--print-config", "prune.rounds=3"]) == 0
    assert "  rounds: 3\n" in capsys.readouterr().out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_grid_workers_die_with_the_grid_process(tmp_path: Path) -> None:
    """Killing `lottery.compare --workers N` must not leave its workers training orphaned."""

    script = tmp_path / "grid.py"
    script.write_text(
        "import concurrent.futures as cf, multiprocessing as mp, os, pathlib, sys, time\n"
        "from lottery.launchers.local import cell_worker_init as _cell_worker_init\n"
        "def work(i):\n    pathlib.Path(sys.argv[1], f'ready{i}').touch()\n    time.sleep(120)\n"
        "if __name__ == '__main__':\n"
        "    ex = cf.ProcessPoolExecutor(2, mp_context=mp.get_context('spawn'), initializer=_cell_worker_init)\n"
        "    futures = [ex.submit(work, i) for i in range(2)]\n"
        "    # a task runs only after its worker's initializer: both files mean both workers are initialised\n"
        "    while len(list(pathlib.Path(sys.argv[1]).glob('ready*'))) < 2:\n"
        "        time.sleep(0.1)\n"
        "    print(' '.join(str(p) for p in ex._processes), flush=True)\n"
        "    time.sleep(120)\n")
    (tmp_path / "ready").mkdir()
    parent = subprocess.Popen([sys.executable, str(script), str(tmp_path / "ready")], stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parents[1])
    workers = [int(p) for p in parent.stdout.readline().split()]
    assert len(workers) == 2
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 20
    alive = workers
    while alive and time.time() < deadline:
        time.sleep(0.2)
        alive = [p for p in workers if Path(f"/proc/{p}").exists() and "Z" not in
                 Path(f"/proc/{p}/stat").read_text().split(")")[-1].split()[0]]
    assert not alive, f"workers {alive} outlived the grid process"

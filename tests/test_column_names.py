"""The round's clock is named for what it counts (``epochs_to_best``, ``steps_to_best``), and records and tables
written under the old names (``best_epoch``, ``best_step``) still resume, gather and plot (issue 32)."""

from __future__ import annotations

import copy
import csv
import json
from pathlib import Path

import pytest

from lottery.callbacks import LotteryTicket
from lottery.callbacks.state import load_state
from lottery.columns import LEGACY_COLUMNS, current_names
from lottery.config import load
from lottery.init import InitSpec
from lottery.plot import early_stop
from lottery.reproduce import differences
from lottery.results import read_table, rows_of
from lottery.rundir import run_dir
from lottery.train import main
from tests.lightning_helpers import PlainClassifier, quick_prune, synthetic, trainer
from tests.test_train_cli import CONFIGS, QUICK, REAL_ROOT, needs_mnist

REPO = Path(__file__).resolve().parents[1]
OLD_RECORD = REPO / "results/frankle2019_full/cells/lenet_300_100-xavier_normal-hash-s0-66a985e1/results.json"


def test_an_old_record_gathers_under_the_new_names() -> None:
    old = json.loads(OLD_RECORD.read_text())
    assert "best_step" in old["rounds"][1] and "steps_to_best" not in old["rounds"][1]
    rows = rows_of(old)
    assert [r["steps_to_best"] for r in rows] == [r["best_step"] for r in old["rounds"]]
    assert [r["epochs_to_best"] for r in rows] == [r["best_epoch"] for r in old["rounds"]]
    assert not any(k in r for r in rows for k in LEGACY_COLUMNS)


def test_an_old_table_reads_and_plots_under_the_new_names(tmp_path: Path) -> None:
    table = REPO / "results/frankle2019_full/results.csv"
    old = tmp_path / "results.csv"
    text = table.read_text()
    for legacy, new in LEGACY_COLUMNS.items():
        text = text.replace(new, legacy)
    old.write_text(text)
    df, renamed = read_table(table), read_table(old)
    assert list(df.columns) == list(renamed.columns) and df.equals(renamed)
    assert df["steps_to_best"].between(1, 50_000).all()  # counts within the round, not the run's clock
    assert [p.name for p in early_stop(renamed, tmp_path)] == ["early_stop.png", "early_stop.svg"]


@needs_mnist
def test_a_run_writes_the_round_clock_as_counts_and_the_run_clock_as_lightnings(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOTTERY_DATA", str(REAL_ROOT))
    args = [str(CONFIGS / "lenet300_mnist.yaml"), "prune.rounds=2", "prune.epochs_per_round=2",
            f"output_dir={tmp_path}", *QUICK]
    assert main(args) == 0
    rows = list(csv.DictReader((run_dir(load(args[0], args[1:])) / "rounds.csv").open()))
    assert not set(LEGACY_COLUMNS) & set(rows[0])
    # Lightning's clock: the index of the round's last epoch from 0 (rounds 0 and 1 end at epochs 1 and 3)
    assert [int(r["epoch"]) for r in rows] == [1, 3]
    per_epoch = int(rows[0]["step"]) // 2
    for r in rows:  # the round's clock: how many epochs and steps the round had trained at its best
        assert int(r["epochs_to_best"]) in (1, 2)
        assert int(r["steps_to_best"]) == int(r["epochs_to_best"]) * per_epoch


def test_a_retrain_compares_with_an_old_record_under_the_new_names() -> None:
    old = json.loads(OLD_RECORD.read_text())
    renamed = {**old, "rounds": [current_names(r) for r in old["rounds"]]}
    assert differences(old, renamed) == []
    renamed["rounds"][2]["steps_to_best"] += 100  # a real difference still shows, under the new name
    assert differences(old, renamed) == [f"rounds[2].steps_to_best: committed {old['rounds'][2]['best_step']}, "
                                         f"retrained {old['rounds'][2]['best_step'] + 100}"]


def test_a_checkpoint_from_before_the_rename_resumes_under_the_new_names() -> None:
    ticket = LotteryTicket(quick_prune(rounds=2), init=InitSpec(seed=1))
    train, val = synthetic()
    module = PlainClassifier()
    trainer(max_epochs=2, callbacks=[ticket]).fit(module, train, val)
    assert all("epochs_to_best" in r for r in ticket.history)
    old = copy.deepcopy(ticket.state_dict())
    inverse = {new: legacy for legacy, new in LEGACY_COLUMNS.items()}
    old["history"] = [{inverse.get(k, k): v for k, v in r.items()} for r in old["history"]]
    assert "best_epoch" in old["history"][0]
    resumed = LotteryTicket(quick_prune(rounds=2), init=InitSpec(seed=1))
    resumed.validate(module)
    load_state(resumed, old)
    assert resumed.history == ticket.history

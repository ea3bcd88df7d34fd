"""Committed results reproduce: a cell of a committed grid, retrained from scratch by today's code, equals its
committed record bit for bit (every round row and curve point). Grids trained cells as stacked members, so
this also shows stacked equals alone. The long grids are checked the same way by hand (see
scripts/retrain_cell.py); this one takes about a minute."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts.retrain_cell import differences
from scripts.retrain_cell import main as retrain
from tests.test_train_cli import needs_mnist

ROOT = Path(__file__).resolve().parents[1]


@needs_mnist
def test_a_committed_sobol_cell_retrains_bit_for_bit(tmp_path: Path, mnist_root: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(ROOT)
    assert retrain(["configs/compare_sobol_quick.yaml", "--cell", "0", "--out", str(tmp_path)]) == 0
    assert "· identical to results/sobol_quick/cells/" in capsys.readouterr().out


def test_a_changed_number_is_a_difference() -> None:
    record = json.loads(next((ROOT / "results" / "sobol_quick" / "cells").glob("*/results.json")).read_text())
    assert differences(record, record) == []
    changed = json.loads(json.dumps(record))
    changed["rounds"][1]["test_acc"] = float.fromhex(changed["rounds"][1]["test_acc"].hex()) + 2**-40
    assert differences(record, changed) == [f"rounds[1].test_acc: committed {record['rounds'][1]['test_acc']!r}, "
                                            f"retrained {changed['rounds'][1]['test_acc']!r}"]
    del changed["rounds"][-1]
    assert any("rows" in d for d in differences(record, changed))

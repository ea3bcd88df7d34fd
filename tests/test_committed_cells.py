"""Committed results reproduce: a cell of a committed grid, retrained from scratch by today's code, equals its
committed record bit for bit where the environment is the record's (every round row and curve point; the grid
trained its cells as stacked members, so this also shows stacked equals alone), and elsewhere stays within
the seeds' spread with the same structure (``lottery.reproduce``). The long grids are checked the same way by
hand (see scripts/retrain_cell.py); this one takes about a minute."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from lottery.environment import mismatches
from lottery.reproduce import compare, differences
from scripts.retrain_cell import main as retrain
from tests.test_train_cli import needs_mnist

ROOT = Path(__file__).resolve().parents[1]
CELLS = ROOT / "results" / "sobol_quick" / "cells"
CELL = "lenet_300_100-xavier_normal-hash-s42-b00b44d1"  # cell 0 of configs/compare_sobol_quick.yaml


@needs_mnist
def test_a_committed_sobol_cell_retrains_to_its_record(tmp_path: Path, mnist_root: Path,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(ROOT)
    assert retrain(["configs/compare_sobol_quick.yaml", "--cell", "0", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    record = json.loads((CELLS / CELL / "results.json").read_text())
    new = json.loads((tmp_path / "cells" / CELL / "results.json").read_text())
    same = not mismatches(record.get("environment"), new["environment"])
    mode = "bit for bit" if same else "within the seed spread"
    assert f"· {mode}: {'identical' if same else 'consistent'} to results/sobol_quick/cells/{CELL}" in out, out
    if not same:  # the script names what differs, so a reader knows why it did not compare bit for bit
        assert "the environment differs from the record's" in out

    # the same comparison flips on a planted mismatch, in whichever mode this environment gets
    peers = [json.loads(p.read_text()) for p in sorted(CELLS.glob("lenet_300_100-xavier_normal-hash-s*/results.json"))
             if p.parent.name != CELL]
    planted = copy.deepcopy(new)
    planted["rounds"][4]["test_acc"] -= 0.05  # five points: outside any seed spread of this grid
    found = compare(record, planted, peers)[2]
    assert found and found[0].startswith("rounds[4].test_acc: committed"), found


def test_a_changed_number_is_a_difference() -> None:
    record = json.loads(next(CELLS.glob("*/results.json")).read_text())
    assert differences(record, record) == []
    changed = json.loads(json.dumps(record))
    changed["rounds"][1]["test_acc"] = float.fromhex(changed["rounds"][1]["test_acc"].hex()) + 2**-40
    assert differences(record, changed) == [f"rounds[1].test_acc: committed {record['rounds'][1]['test_acc']!r}, "
                                            f"retrained {changed['rounds'][1]['test_acc']!r}"]
    del changed["rounds"][-1]
    assert any("rows" in d for d in differences(record, changed))

"""The OpenLTH benchmark times OpenLTH's real work in every repeat (issue 32): OpenLTH skips a run whose folder
under ~/open_lth_data exists, so each repeat gets a home of its own. Checked with a stand-in for open_lth.py
that behaves that way (OpenLTH itself cannot be fetched here): every repeat must do the work."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("openlth_benchmark", ROOT / "benchmarks" / "openlth.py")
assert _spec is not None and _spec.loader is not None
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)  # the benchmark script (not a package module), loaded by path
STAND_IN = '''import pathlib, sys
run = pathlib.Path.home() / "open_lth_data" / "lottery_x"
log = pathlib.Path(sys.argv[0]).parent / "work.log"
if not run.exists():  # OpenLTH's behaviour: work only when the run folder is missing
    run.mkdir(parents=True)
    log.open("a").write("trained\\n")
'''


def test_every_repeat_measures_openlths_real_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    openlth = tmp_path / "open_lth"
    openlth.mkdir()
    (openlth / "open_lth.py").write_text(STAND_IN)
    (tmp_path / "home" / "open_lth_datasets").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OPENLTH_DIR", str(openlth))

    homes = [bench.fresh_home(tmp_path)["HOME"] for _ in range(2)]
    assert homes[0] != homes[1] and all((Path(h) / "open_lth_datasets").is_symlink() for h in homes)
    for _ in range(3):
        bench.measure([sys.executable, str(openlth / "open_lth.py")], openlth, bench.fresh_home(tmp_path))
    assert (openlth / "work.log").read_text().count("trained") == 3  # not 1: no repeat timed a cached run
    assert not (tmp_path / "home" / "open_lth_data").exists()  # the user's own OpenLTH runs are untouched
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "openlth.py")], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert done.returncode == 0 and "OpenLTH not found" in done.stdout

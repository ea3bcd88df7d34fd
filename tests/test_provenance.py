"""Records say what made them (issue 31): every run, ticket and grid table carries its environment, and a
retrain is compared bit for bit only where that environment is the record's, within the seeds' spread
elsewhere. Both modes flip on a planted mismatch."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from lottery.environment import DECIDING, environment, environment_id, mismatches
from lottery.environment import main as environment_cli
from lottery.export import main as export
from lottery.reproduce import FLOOR, SIGMAS, compare, seed_spread, spread_differences
from lottery.results import environments, rows_of
from lottery.train import main as train
from scripts.starts_at_init import main as starts_at_init
from tests.lightning_helpers import crash_at_epoch
from tests.test_train_cli import needs_mnist, quick_run

ROOT = Path(__file__).resolve().parents[1]
CELLS = ROOT / "results" / "sobol_quick" / "cells"


def committed(start: str = "lenet_300_100-xavier_normal-hash") -> list[dict]:
    """The committed records of one start, one per seed, as records made before environments were recorded."""
    records = [json.loads(p.read_text()) for p in sorted(CELLS.glob(f"{start}-s*/results.json"))]
    return [{k: v for k, v in r.items() if k not in ("environment", "environments")} for r in records]


def test_the_environment_names_what_decides_the_floats() -> None:
    env = environment()
    assert set(DECIDING) - {"cuda", "cudnn", "gpu"} <= set(env)
    assert env["torch"] and env["numpy"] and env["python"].count(".") == 2 and env["threads"] >= 1
    assert env["cpu_capability"] and env["device"] == "cpu"
    assert mismatches(env, copy.deepcopy(env)) == []
    for field, other in (("torch", "0.0.1"), ("cpu_capability", "NO AVX"), ("threads", 97)):
        changed = {**env, field: other}
        assert mismatches(changed, env) == [f"{field}: recorded {other!r}, here {env[field]!r}"]
        assert environment_id(changed) != environment_id(env)
    assert environment_id({**env, "platform": "elsewhere"}) == environment_id(env)  # not a deciding field
    assert mismatches(None, env) == ["environment: not recorded (the record predates records that carry their "
                                     "environment)"]


def test_the_grid_table_names_each_runs_environment() -> None:
    env = environment()
    old, new = committed()[:2]
    new = {**new, "environment": env}
    resumed = {**new, "run": "r", "environments": [env, {**env, "torch": "x"}]}
    ids = [rows_of(r)[0]["environment"] for r in (old, new, resumed)]
    assert ids == ["unrecorded", environment_id(env), "mixed"]
    table = environments([old, new, resumed])
    assert table["unrecorded"] == {"runs": 1} and table[environment_id(env)] == {"runs": 1, "environment": env}
    assert len(table["mixed"]["environments"]) == 2


def records_in(env: dict, records: list[dict]) -> list[dict]:
    return [{**copy.deepcopy(r), "environment": env} for r in records]


def test_a_retrain_in_the_records_environment_must_be_bit_for_bit() -> None:
    env = environment()
    record, *peers = records_in(env, committed())
    assert compare(record, copy.deepcopy(record), peers) == ("bit for bit", [], [])
    changed = copy.deepcopy(record)
    changed["rounds"][3]["test_acc"] += 1e-7  # far inside the seeds' spread, yet not the same float
    mode, envs, found = compare(record, changed, peers)
    old, new = record["rounds"][3]["test_acc"], changed["rounds"][3]["test_acc"]
    assert (mode, envs) == ("bit for bit", [])
    assert found == [f"rounds[3].test_acc: committed {old!r}, retrained {new!r}"]


def test_a_retrain_elsewhere_is_compared_within_the_seed_spread() -> None:
    env = environment()
    record, *peers = committed()
    elsewhere = {**env, "cpu_capability": "SOMEWHERE ELSE"}
    retrained = {**copy.deepcopy(record), "environment": elsewhere}
    spread = seed_spread(peers)
    bound = SIGMAS * 2**0.5 * spread["test_acc"]
    assert FLOOR < bound < 0.02  # 5 seeds of LeNet-300-100 on MNIST: a bound of about a point, not a blanket
    for r in retrained["rounds"]:  # another environment: every accuracy moved, all within the bound
        r["test_acc"] += 0.5 * bound
        r["at_best/test_acc"] -= 0.5 * bound
    mode, envs, found = compare(record, retrained, peers)
    assert mode == "within the seed spread" and envs[0].startswith("environment: not recorded") and found == []

    planted = copy.deepcopy(retrained)
    planted["rounds"][5]["test_acc"] += bound  # now 1.5 bounds away
    assert [f.split(":")[0] for f in spread_differences(record, planted, spread)] == ["rounds[5].test_acc"]
    structural = copy.deepcopy(retrained)
    structural["rounds"][2]["remaining_pct"] = 81.0  # IMP's counts are exact in every environment
    assert spread_differences(record, structural, spread) == [
        f"rounds[2].remaining_pct: committed {record['rounds'][2]['remaining_pct']!r}, retrained 81.0 (must be equal)"]
    short = {**retrained, "rounds": retrained["rounds"][:-1]}
    assert spread_differences(record, short, spread)[0] == "rounds: 16 committed rows, 15 retrained"
    assert "no seed spread" in spread_differences(record, retrained, seed_spread(peers[:1]))[0]


@needs_mnist
def test_a_run_its_ticket_and_its_environment_file_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    args, path = quick_run(tmp_path, monkeypatch)
    assert train(args) == 0
    result = json.loads((path / "results.json").read_text())
    (env,) = json.loads((path / "environment.json").read_text())
    assert result["environment"] == env and "environments" not in result
    assert export([str(path), "--out", str(tmp_path / "out")]) == 0
    assert json.loads((tmp_path / "out" / "ticket" / "ticket.json").read_text())["environment"] == env
    capsys.readouterr()
    assert environment_cli([str(path)]) == 0
    assert "same environment" in capsys.readouterr().out
    record = json.loads((path / "results.json").read_text())
    record["environment"]["torch"] = "0.0.1"
    (path / "results.json").write_text(json.dumps(record))
    assert environment_cli([str(path)]) == 0
    assert f"torch: recorded '0.0.1', here '{env['torch']}'" in capsys.readouterr().out


def test_print_config_shows_this_environment(capsys: pytest.CaptureFixture[str]) -> None:
    assert train([str(ROOT / "configs" / "lenet300_mnist.yaml"), "--print-config"]) == 0
    line = capsys.readouterr().out.splitlines()[1]
    env = environment()
    assert line.startswith("# environment here: Python ") and f"torch {env['torch']}" in line
    assert env["cpu_capability"] in line


@needs_mnist
def test_starts_at_init_prints_the_seed_correlation(tmp_path: Path, mnist_root: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """The column a reader of the console needs, not only its CSV: how much a start's seeds differ."""
    grid = tmp_path / "grid.yaml"
    grid.write_text(f"base: {ROOT / 'configs' / 'lenet300_mnist.yaml'}\nstarts: [{{scheme: xavier_normal}}, "
                    "{scheme: xavier_normal, source: sobol-paper}]\nseeds: [1, 2]\n"
                    f"overrides: {{data: {{test_subset: 500}}}}\noutput_dir: {tmp_path / 'runs'}\n")
    assert starts_at_init([str(grid), "--out", str(tmp_path / "at_init.csv")]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "seed" in line]
    shown = [line.rsplit(" ", 1)[-1] for line in lines]
    assert len(shown) == 4 and shown[0] == shown[2] == "–"  # each start's first seed has no previous one
    assert abs(float(shown[1])) < 0.02  # the hash: independent draws per seed
    assert shown[3] == "+1.000"  # sobol-paper ignores its seed: the same network again


def resumed_after(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, first_attempt: dict) -> Path:
    """A 3-round run killed as its third epoch starts, its first attempt's environment replaced by
    ``first_attempt(env)``, then resumed here; its run directory."""
    args, _ = quick_run(tmp_path, monkeypatch)
    args = [a.replace("prune.rounds=2", "prune.rounds=3") for a in args]
    crash_at_epoch(3, lambda: train(args))
    (run,) = [p for p in tmp_path.iterdir() if (p / "environment.json").is_file()]
    (env,) = json.loads((run / "environment.json").read_text())
    (run / "environment.json").write_text(json.dumps([first_attempt(env)]))
    assert len(json.loads((run / "rounds.json").read_text())) == 2  # killed in the last round
    assert train(args) == 0
    assert len(json.loads((run / "results.json").read_text())["rounds"]) == 3
    return run


@needs_mnist
def test_a_run_resumed_in_another_environment_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = resumed_after(tmp_path, monkeypatch, lambda env: {**env, "torch": "0.0.1"})
    result = json.loads((run / "results.json").read_text())
    assert [e["torch"] for e in result["environments"]] == ["0.0.1", environment()["torch"]]
    assert rows_of(result)[0]["environment"] == "mixed"
    mode, envs, _ = compare(result, {**result, "environments": None}, [])
    assert mode == "within the seed spread" and "resumed in another environment (2 environments)" in envs[0]


@needs_mnist
def test_a_resume_under_another_kernel_version_is_the_same_environment(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    run = resumed_after(tmp_path, monkeypatch, lambda env: {**env, "platform": "Linux-another-kernel"})
    assert len(json.loads((run / "environment.json").read_text())) == 1  # the platform string decides nothing
    assert "environments" not in json.loads((run / "results.json").read_text())

"""Configs: every shipped YAML validates; malformed ones fail with one line, no traceback, nothing written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lottery.config import Config, ConfigError, describe, load, resolve, to_dict
from lottery.train import main
from scripts.config_reference import callback_table, table
from tests.data_fixtures import REAL_ROOT, fake_mnist

CONFIGS = sorted(p for p in (Path(__file__).resolve().parents[1] / "configs").glob("*.yaml")
                 if not p.name.startswith(("compare_", "stability_")))  # grids and studies: their own tests


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_shipped_config_validates(path: Path) -> None:
    cfg = load(path)
    assert cfg.name == path.stem and cfg.run_name.startswith(path.stem + "-")


def test_lenet300_config_is_frankle_and_carbin() -> None:
    cfg = load(CONFIGS[0].parent / "lenet300_mnist.yaml")
    assert (cfg.optim.name, cfg.optim.lr, cfg.data.batch_size, cfg.data.val_size) == ("adam", 1.2e-3, 60, 5000)
    assert (cfg.prune.rate, cfg.prune.output_rate, cfg.init.scheme) == (0.2, 0.1, "xavier_normal")
    wijnja = load(CONFIGS[0].parent / "lenet300_mnist_wijnja2020.yaml")
    assert (wijnja.prune.rounds, wijnja.prune.epochs_per_round, wijnja.optim.lr) == (20, 5, 0.0012)


def test_overrides_types_and_run_hash() -> None:
    base = resolve({"name": "x"})
    cfg = resolve({"name": "x"}, ["optim.lr=1e-3", "optim.milestones=[2, 4]", "data.augment=true",
                                  "model.kwargs.hidden=[10]", "init.seed=null"])
    assert cfg.optim.lr == 1e-3 and cfg.optim.milestones == [2, 4] and cfg.data.augment is True
    assert cfg.model.kwargs == {"hidden": [10]} and cfg.run_hash() != base.run_hash()
    # where and how a run is reported does not change what it computes, so not its directory either
    same = resolve({"name": "x"}, ["output_dir=/elsewhere", "train.threads=1", "wandb.enabled=true"])
    assert same.run_hash() == base.run_hash()
    assert resolve({"name": "x", "seed": 1}).run_hash() != base.run_hash()


def test_print_config_round_trips(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main([str(CONFIGS[0].parent / "lenet300_mnist.yaml"), "prune.rounds=3", "--print-config"]) == 0
    out = capsys.readouterr().out
    first, _, body = out.partition("\n")
    assert first.startswith("# run directory: runs/lenet300_mnist-")
    (tmp_path / "printed.yaml").write_text(body)
    again = load(tmp_path / "printed.yaml")
    assert to_dict(again) == to_dict(load(CONFIGS[0].parent / "lenet300_mnist.yaml", ["prune.rounds=3"]))


def test_print_config_does_not_import_lightning() -> None:
    # checking a config is the first thing a user does after a typo; Lightning would add seconds to each try
    code = ("import sys; from lottery.train import main; "
            f"main([{str(CONFIGS[0].parent / 'lenet300_mnist.yaml')!r}, '--print-config']); "
            "print(sorted(m for m in ('pytorch_lightning', 'lightning', 'wandb', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1] == "[]"


def test_every_key_has_help_text() -> None:
    rows = describe(Config)
    assert len(rows) > 50 and all(help_text for *_, help_text in rows)


# (config dict or None for a file written verbatim, overrides, expected message fragment)
MALFORMED = [
    ({"epochs": 3}, [], "epochs: unknown key; valid keys: name, seed"),
    ({"prune": {"ratee": 0.2}}, [], "prune.ratee: unknown key (did you mean 'rate'?)"),
    ({"prune": {"rounds": "three"}}, [], "prune.rounds: 'three' is not valid; expected an integer or null"),
    ({"data": {"batch_size": 1.5}}, [], "data.batch_size: 1.5 is not valid; expected an integer"),
    ({"model": {"name": "lenet"}}, [], "model.name: 'lenet' is not valid; choose one of"),
    ({"data": {"dataset": "imagenet"}}, [], "data.dataset: 'imagenet' is not valid; choose one of cifar10"),
    ({"init": {"scheme": "he"}}, [], "init.scheme: 'he' is not valid; choose one of"),
    ({"prune": {"criterion": "biggest"}}, [], "prune.criterion: 'biggest' is not valid; choose one of large_init"),
    ({"prune": {"epochs_per_round": -1}}, [], "prune.epochs_per_round: -1 is not valid; use an integer ≥ 1"),
    ({"prune": {"rate": 1.0}}, [], "prune.rate: 1.0 is not valid; use a fraction in [0, 1)"),
    ({"optim": {"name": "rmsprop"}}, [], "optim.name: 'rmsprop' is not valid; choose one of adam, adamw, sgd"),
    ({}, ["prune.rounds"], "override 'prune.rounds': expected section.field=value"),
    ({}, ["=3"], "override '=3': expected section.field=value"),
    ({"seed": 3}, ["seed.x=1"], "override 'seed.x': seed is a value, not a section"),
    ({}, ["seed.x=1"], "seed: {'x': 1} is not valid; expected an integer"),
    ({"data": {"root": "/does/not/exist"}}, [], "data.root: '/does/not/exist' does not exist"),
    ({"data": {"root": "FILE"}}, [], "is not a readable directory"),
    ({"data": {"root": "EMPTY", "download": False}}, [], "MNIST not found: missing train-images-idx3-ubyte"),
    ({"train": {"eval_every": 2}, "prune": {"epochs_per_round": 3}}, [], "train.eval_every: 2 is not valid"),
    ({"optim": {"lr": -0.1}}, [], "optim.lr: -0.1 is not valid; use a learning rate > 0"),
    ({"prune": {"layer_rates": {"nothing.*": 0.1}}}, [], "prune.layer_rates: 'nothing.*' matches no parameter"),
    ({"data": {"val_size": 0}}, [], "prune.monitor: 'val_loss' needs a validation split"),
    ({"init": {"scale": 0}}, [], "init.scale: 0.0 is not valid; use a finite number > 0"),
    (None, [], "not valid YAML at line 3"),
    ([1, 2], [], "the top level must be a mapping of sections, not list"),
]


@pytest.mark.parametrize(("data", "overrides", "message"), MALFORMED, ids=[m[2][:40] for m in MALFORMED])
def test_malformed_config_fails_with_one_line_and_writes_nothing(
    data: object, overrides: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "FILE").write_text("x")
    (tmp_path / "EMPTY").mkdir()
    fake_mnist(tmp_path / "data", n_train=50, n_test=20)
    path = tmp_path / "bad.yaml"
    if data is None:
        path.write_text("prune:\n  rounds: [1, 2\n")
    else:
        if isinstance(data, dict):
            data = {**data, "output_dir": str(tmp_path / "runs")}
            data.setdefault("data", {}).setdefault("root", str(tmp_path / "data"))
            data["data"] = {k: str(tmp_path / v) if k == "root" and v in ("FILE", "EMPTY") else v
                            for k, v in data["data"].items()}
            data["data"].setdefault("val_size", 10)
        path.write_text(yaml.safe_dump(data))
    assert main([str(path), *overrides]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err, err
    assert "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_missing_config_file_and_a_subprocess_sees_no_traceback(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load(tmp_path / "nope.yaml")
    lenet = CONFIGS[0].parent / "lenet300_mnist.yaml"
    proc = subprocess.run([sys.executable, "-m", "lottery.train", str(lenet), "prune.rate=2"],
                          capture_output=True, text=True, cwd=tmp_path, env={"LOTTERY_DATA": str(REAL_ROOT),
                                                                           "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: prune.rate: 2.0 is not valid; use a fraction in [0, 1)"
    assert not (tmp_path / "runs").exists()


def test_readme_config_reference_is_current() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert table() in readme, "README's config reference is stale: rerun python scripts/config_reference.py"
    assert callback_table() in readme, "README's callback arguments are stale: rerun scripts/config_reference.py"

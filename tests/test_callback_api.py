"""The callback and the CLI share one definition of an experiment: the callback takes the config's
``PruneConfig`` (same fields, same defaults, same checks), and declares none of its knobs a second time."""

from __future__ import annotations

import dataclasses
import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lottery import grid
from lottery.callbacks import LotteryTicket
from lottery.config import Config, ConfigError, InitConfig, PruneConfig, load
from lottery.init import InitSpec
from lottery.literature import frankle2019
from lottery.preflight import check_config
from lottery.pruning.controls import CONTROLS
from tests.lightning_helpers import PlainClassifier


def test_the_callbacks_defaults_are_the_configs_field_by_field() -> None:
    callback, config = LotteryTicket().prune, Config().prune
    for f in dataclasses.fields(PruneConfig):  # derived from the dataclass: a new field is covered unlisted
        assert getattr(callback, f.name) == getattr(config, f.name), f.name
    assert callback.epochs_per_round == 5 and callback.rounds == 20 and callback.output_rate == 0.1


def test_no_knob_is_declared_twice_and_the_constructor_stays_small() -> None:
    params = set(inspect.signature(LotteryTicket).parameters)
    assert len(params) <= 12
    sections = {s.name: getattr(Config(), s.name) for s in dataclasses.fields(Config)}
    sections = {name: value for name, value in sections.items() if dataclasses.is_dataclass(value)}
    assert "prune" in sections and len(sections) >= 7
    for name, value in sections.items():
        twice = (params - {"prune", "init"}) & {f.name for f in dataclasses.fields(value)}
        assert not twice, f"{sorted(twice)} declared by the callback and by config section {name}"


def test_the_callback_checks_what_the_config_checks_with_the_same_words(tmp_path) -> None:
    bad = {"rate": 1.0, "rewind": "start", "control": "shuffle", "rounds": 0, "criterion": "biggest"}
    for field, value in bad.items():
        with pytest.raises(ConfigError) as from_callback:
            LotteryTicket(PruneConfig(**{field: value}))
        path = tmp_path / "c.yaml"
        path.write_text("model: {name: lenet_300_100}\n")
        try:
            check_config(load(path, [f"prune.{field}={value}"]))
        except ConfigError as from_cli:
            assert str(from_cli) == str(from_callback.value)
        else:
            raise AssertionError(f"the CLI accepted prune.{field}={value}")


def test_a_configs_prune_section_drives_the_callback_unchanged() -> None:
    prune = load("configs/lenet300_mnist.yaml", ["prune.rounds=3"]).prune
    ticket = LotteryTicket(prune)
    ticket.validate(PlainClassifier())
    assert ticket.prune is prune and ticket.planned_rounds() == 3 and ticket.epochs_per_round == prune.epochs_per_round
    # the output layer at output_rate, the others at rate
    assert ticket.tensors.rates == {"net.0.weight": 0.2, "net.2.weight": 0.2, "net.4.weight": 0.1}


def test_controls_are_listed_once() -> None:
    assert set(CONTROLS) == {"reinit", "random_prune", "signed_constant"}
    assert grid.CONTROLS[:-1] == tuple(CONTROLS) and frankle2019.CONTROLS is CONTROLS
    assert "control" in {f.name for f in dataclasses.fields(PruneConfig)}


def _lightning_cli(*args: str, parser: bool = False) -> subprocess.CompletedProcess[str]:
    base = ["fit", "--trainer.max_epochs=-1", "--trainer.enable_progress_bar=false", "--trainer.logger=false",
            "--trainer.enable_checkpointing=false", "--trainer.callbacks+=lottery.callbacks.LotteryTicket",
            "--trainer.callbacks.prune.rounds=2", "--trainer.callbacks.prune.epochs_per_round=1"]
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LOTTERY_PARSER": "1" if parser else ""}
    return subprocess.run([sys.executable, "-m", "tests.lightning_cli_app", *base, *args], cwd=root, text=True,
                          capture_output=True, timeout=300, env=env)


def test_lightning_cli_configures_the_callback_from_the_same_fields() -> None:
    pytest.importorskip("jsonargparse")  # a dev dependency; `pip install lottery[cli]` for users
    out = _lightning_cli("--trainer.callbacks.init.scheme=kaiming_normal", "--trainer.callbacks.prune.rate=0.5",
                         "--trainer.callbacks.prune.output_rate=0.5")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "round 1/1 · 50.0 % remaining" in out.stderr  # prune.rate reached the callback


def test_lightning_cli_refuses_a_misspelled_scheme_while_parsing_naming_the_choices() -> None:
    pytest.importorskip("jsonargparse")
    out = _lightning_cli("--trainer.callbacks.init.scheme=xavier_nromal")
    assert out.returncode == 2 and "Traceback" not in out.stderr  # a parse error, not an exception
    error = out.stderr[out.stderr.index("error:"):]
    assert "'xavier_normal'" in error and "xavier_nromal" in error and len(error.splitlines()) <= 30, error


def test_lightning_cli_with_our_parser_names_a_misspelled_field_in_one_line() -> None:
    pytest.importorskip("jsonargparse")
    plain = _lightning_cli("--trainer.callbacks.prune.rewnd=init")
    assert plain.returncode == 2 and "did you mean" not in plain.stderr  # jsonargparse's own, many lines
    ours = _lightning_cli("--trainer.callbacks.prune.rewnd=init", parser=True)
    assert ours.returncode == 2 and "Traceback" not in ours.stderr
    assert ours.stderr.strip().splitlines() == ["error: prune.rewnd is not a field of prune; did you mean 'rewind'? "
                                                "valid fields: " + ", ".join(sorted(
                                                    f.name for f in dataclasses.fields(PruneConfig)))]
    typo = _lightning_cli("--trainer.callbacks.init.shceme=xavier_normal", parser=True)
    assert typo.stderr.startswith("error: init.shceme is not a field of init; did you mean 'scheme'?")
    fine = _lightning_cli("--trainer.callbacks.prune.rate=0.5", "--trainer.callbacks.prune.output_rate=0.5",
                          parser=True)
    assert fine.returncode == 0 and "round 1/1 · 50.0 % remaining" in fine.stderr


def test_the_init_section_is_the_init_spec_field_for_field() -> None:
    names = [sorted(f.name for f in dataclasses.fields(kind)) for kind in (InitConfig, InitSpec)]
    assert names[0] == names[1]
    cfg = load("configs/lenet300_mnist.yaml", ["seed=7", "init.scale=0.5", "init.source=sobol"])
    assert cfg.init_spec() == InitSpec(seed=7, scheme="xavier_normal", scale=0.5, source="sobol")
    cfg.init.seed = 9
    assert cfg.init_spec().seed == 9

"""A new user's malformed inputs: every one stops with exit status 2 and one line naming the field (or file)
and the bad value, no traceback, and nothing written (issue 13). Configs, overrides, files, grids, inspect."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lottery.compare import main as compare
from lottery.generative.__main__ import main as generative
from lottery.inspect import main as inspect_tool
from lottery.train import main as train
from tests.data_fixtures import fake_mnist

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
LENET = str(CONFIGS / "lenet300_mnist.yaml")

# (override, what the one line must name): the field, and where useful the value or the valid choices
OVERRIDES = [
    ("data.dataset=imagenet", "data.dataset: 'imagenet'"), ("data.dataset=3", "data.dataset"),
    ("data.batch_size=0", "data.batch_size: 0"), ("data.batch_size=-1", "data.batch_size: -1"),
    ("data.batch_size=abc", "data.batch_size"), ("data.batch_size=1.5", "data.batch_size"),
    ("data.eval_batch_size=0", "data.eval_batch_size: 0"), ("data.val_size=-1", "data.val_size: -1"),
    ("data.train_subset=0", "data.train_subset: 0"), ("data.test_subset=-4", "data.test_subset: -4"),
    ("data.augment=maybe", "data.augment"), ("data.download=perhaps", "data.download"),
    ("data.split_seed=-1", "data.split_seed: -1"), ("data.split_seed=x", "data.split_seed"),
    ("data.root=/nonexistent/lottery", "/nonexistent/lottery"), ("data.root=[1]", "data.root"),
    ("data.colour=red", "data.colour"),
    ("model.name=resnet9000", "model.name: 'resnet9000'"), ("model.name=nope.nope:X", "model.name"),
    ("model.name=os:path", "model.name: 'os:path'"), ("model.name=os.path:join", "model.name: 'os.path:join'"),
    ("model.name=3", "model.name"), ("model.kwargs=[1]", "model.kwargs"),
    ("model.kwargs.width=3", "model.kwargs: 'width'"), ("model.depth=3", "model.depth"),
    ("init.scheme=he_normal", "init.scheme: 'he_normal'"), ("init.scale=0", "init.scale"),
    ("init.scale=-1", "init.scale"), ("init.scale=abc", "init.scale"), ("init.source=quantum", "init.source"),
    ("init.bias=random", "init.bias"), ("init.sobol_start_dim=0", "init.sobol_start_dim"),
    ("init.sobol_start_dim=30000", "init.sobol_start_dim"), ("init.seed=-3", "init.seed: -3"),
    ("init.seed=abc", "init.seed"), ("init.seed=9223372036854775808", "init.seed"), ("init.gain=2", "init.gain"),
    ("optim.name=rmsprop", "optim.name"), ("optim.lr=0", "optim.lr: 0"), ("optim.lr=-1", "optim.lr: -1"),
    ("optim.lr=fast", "optim.lr"), ("optim.momentum=1.5", "optim.momentum: 1.5"),
    ("optim.momentum=-0.1", "optim.momentum"), ("optim.weight_decay=-1", "optim.weight_decay: -1"),
    ("optim.gamma=0", "optim.gamma: 0"), ("optim.milestones=[0]", "optim.milestones[0]: 0"),
    ("optim.milestones=5", "optim.milestones"), ("optim.nesterov=true", "optim.nesterov"),
    ("optim.warmup_steps=-1", "optim.warmup_steps: -1"), ("optim.fused=maybe", "optim.fused"),
    ("optim.betas=[0.9,0.99]", "optim.betas"),
    ("prune.rounds=0", "prune.rounds: 0"), ("prune.rounds=-1", "prune.rounds: -1"),
    ("prune.rounds=100000", "prune.rounds: 100000"), ("prune.rounds=null", "prune.rounds"),
    ("prune.rounds=two", "prune.rounds"), ("prune.epochs_per_round=0", "prune.epochs_per_round: 0"),
    ("prune.epochs_per_round=18446744073709551616", "prune.epochs_per_round"),
    ("prune.rate=1.0", "prune.rate: 1.0"), ("prune.rate=-0.1", "prune.rate: -0.1"), ("prune.rate=1.2", "prune.rate"),
    ("prune.rate=lots", "prune.rate"), ("prune.conv_rate=2", "prune.conv_rate: 2"),
    ("prune.output_rate=1", "prune.output_rate: 1"), ("prune.layer_rates={{x: 2}}", "prune.layer_rates.x: 2"),
    ("prune.layer_rates=[1]", "prune.layer_rates"), ("prune.scope=pool", "prune.scope"),
    ("prune.criterion=biggest", "prune.criterion: 'biggest'"), ("prune.rewind=start", "prune.rewind"),
    ("prune.rewind_step=-1", "prune.rewind_step: -1"), ("prune.control=shuffle", "prune.control"),
    ("prune.monitor=train_loss", "prune.monitor"), ("prune.monitor_mode=up", "prune.monitor_mode"),
    ("prune.sleeping_thresholds=[-1]", "prune.sleeping_thresholds[0]"),
    ("prune.sleeping_thresholds=0.1", "prune.sleeping_thresholds"),
    ("prune.sleeping_relative=[-0.5]", "prune.sleeping_relative[0]"),
    ("prune.sleeping_check=-0.1", "prune.sleeping_check: -0.1"),
    ("prune.masks_from=/nonexistent/run", "prune.masks_from: '/nonexistent/run' does not exist"),
    ("prune.control_seed=-5", "prune.control_seed: -5"),
    ("prune.prune_seed=18446744073709551616", "prune.prune_seed"), ("prune.target_density=0.5", "prune.rounds"),
    ("prune.pruning=yes", "prune.pruning"),
    ("train.eval_every=0", "train.eval_every: 0"), ("train.eval_every=3", "train.eval_every: 3"),
    ("train.threads=-1", "train.threads: -1"), ("train.steps_per_call=0", "train.steps_per_call: 0"),
    ("train.accelerator=gpu", "train.accelerator: 'gpu'"), ("train.devices=0", "train.devices: 0"),
    ("train.strategy=nope", "train.strategy: 'nope'"), ("train.precision=banana", "train.precision: 'banana'"),
    ("train.deterministic=maybe", "train.deterministic"), ("train.progress_bar=2", "train.progress_bar"),
    ("train.checkpoint=sometimes", "train.checkpoint"), ("train.epochs=3", "train.epochs"),
    ("wandb.mode=sometimes", "wandb.mode"), ("wandb.enabled=maybe", "wandb.enabled"),
    ("wandb.tags=3", "wandb.tags"), ("wandb.team=x", "wandb.team"),
    ("seed=-1", "seed: -1"), ("seed=18446744073709551616", "seed: 18446744073709551616"), ("seed=abc", "seed"),
    ("name=../../x", "name: '../../x'"), ("name=a/b", "name: 'a/b'"), ("name=..", "name: '..'"),
    ("output_dir={tmp}/afile", "output_dir"), ("output_dir={tmp}/afile/sub", "output_dir"),
    ("foo=1", "foo"), ("data=3", "data"), ("prune.rounds", "prune.rounds"), ("=3", "override"),
    ("data.batch_size=[60]", "data.batch_size"), ("optim=adam", "optim"),
    ("init.source=vae", "init.generator: init.source 'vae' needs a generator file"),
    ("init.source=ghn", "init.generator: init.source 'ghn' needs a generator file"),
    ("init.generator=vae-0123456789ab.pt", "init.generator: 'vae-0123456789ab.pt' is only used by init.source vae"),
    # issue 20: bombs and paths
    ("train.devices=99", "train.devices: 99 is not valid; this machine has"),
    ("train.threads=2147483648", "train.threads: 2147483648"), ("name=" + "n" * 300, "name: 'nnnn"),
    ("output_dir=a\0b", "output_dir: 'a\\x00b'"),
    ("prune.layer_rates=" + "[" * 200 + "]" * 200, "override prune.layer_rates: its value nested more than"),
]


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LOTTERY_DATA", str(fake_mnist(tmp_path / "data")))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("in the way\n")
    return tmp_path


def error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """What the command printed: exactly one ``error: …`` line on stderr, no traceback."""
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def created(tmp: Path) -> set[str]:
    return {p.name for p in tmp.iterdir()} - {"data", "afile", "bad.yaml", "grid.yaml"}


@pytest.mark.parametrize(("override", "must"), OVERRIDES, ids=[o for o, _ in OVERRIDES])
def test_bad_override(override: str, must: str, sandbox: Path, capsys: pytest.CaptureFixture[str]) -> None:

    # the case's override comes last, so that it wins over the sandbox's own settings
    args = [LENET, "data.download=false", "data.val_size=50", f"output_dir={sandbox / 'out'}"]
    assert train([*args, override.format(tmp=sandbox)]) == 2
    assert must.format(tmp=sandbox) in error_line(capsys)
    assert not created(sandbox)


FILES = [
    ("missing", None, "does not exist"),
    ("empty", "", "is empty"),
    ("comment only", "# nothing\n", "is empty"),
    ("invalid yaml", "data: [1, 2\n", "not valid YAML"),
    ("tab-indented", "data:\n\tdataset: mnist\n", "not valid YAML"),
    ("top-level list", "- 1\n- 2\n", "the top level must be a mapping"),
    ("top-level string", "lenet\n", "the top level must be a mapping"),
    ("unknown section", "dataa: {dataset: mnist}\n", "dataa"),
    ("section not a mapping", "prune: 3\n", "prune"),
    ("bad value in file", "prune: {rate: 2}\n", "prune.rate: 2"),
    ("binary junk", "\x00\x01\x02\xff", "config file"),
    # issue 20: a second section would silently replace the first; bombs are refused before they expand
    ("duplicate section", "prune: {rounds: 2}\nprune: {rate: 0.1}\n", "key 'prune' is given twice (again at line 2)"),
    ("duplicate field", "prune:\n  rounds: 2\n  rounds: 3\n", "key 'rounds' is given twice"),
    ("alias bomb", "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdef", "bcdefg", strict=True)),
     "expands to more than 100,000 values"),
    ("deep nesting", "a: " + "[" * 100000 + "]" * 100000 + "\n", "nested more than 64 levels deep"),
    ("huge file", "# " + "x" * (1 << 20) + "\n", "is over 1024 KB"),
]


@pytest.mark.parametrize(("text", "must"), [f[1:] for f in FILES], ids=[f[0] for f in FILES])
def test_bad_config_file(text: str | None, must: str, sandbox: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = sandbox / "bad.yaml"
    if text is not None:
        path.write_bytes(text.encode("latin-1"))
    assert train([str(path), f"output_dir={sandbox / 'out'}"]) == 2
    assert must in error_line(capsys)
    assert not created(sandbox)


GRIDS = [
    ({"seeds": []}, "grid.seeds: the axis is empty"), ({"starts": []}, "grid.starts: the axis is empty"),
    ({"models": []}, "grid.models: the axis is empty"), ({"sources": []}, "grid.sources: the axis is empty"),
    ({"seeds": [1, 1]}, "grid.seeds: 1 appears more than once"),
    ({"models": ["lenet5", "lenet5"]}, "grid.models: 'lenet5' appears more than once"),
    ({"starts": [{"scheme": "xavier_normal"}, {"scheme": "xavier_normal", "scale": 1.0}]}, "duplicate start"),
    ({"starts": [{"scheme": "he_normal"}]}, "init.scheme: 'he_normal'"),
    ({"starts": [{"schema": "xavier_normal"}]}, "grid.starts[0].schema: unknown key"),
    ({"starts": "xavier"}, "grid.starts"), ({"seeds": "1,2"}, "grid.seeds"), ({"seeds": [-1]}, "seed: -1"),
    ({"sources": ["quantum"]}, "init.source: 'quantum'"), ({"models": ["resnet9000"]}, "model.name: 'resnet9000'"),
    ({"base": ""}, "grid.base: missing"), ({"base": "nope.yaml"}, "does not exist"),
    ({"seed": [1]}, "seed: unknown key"), ({"members_per_process": 0}, "grid.members_per_process: 0"),
    ({"members_per_process": "many"}, "grid.members_per_process"), ({"controls": ["shuffle"]}, "grid.controls[0]"),
    ({"controls": ["reinit", "reinit"]}, "grid.controls"), ({"controls": "reinit"}, "grid.controls"),
    ({"overrides": {"prune": {"rate": 3}}}, "prune.rate: 3"), ({"overrides": 3}, "grid.overrides"),
    ({"overrides": {"prune": {"control": "reinit"}}, "controls": ["reinit"]}, "grid.controls"),
    ({"members_exact": "yes"}, "grid.members_exact"),
    ({"name": "../../x"}, "grid.name: '../../x'"), ({"name": "a/b"}, "grid.name: 'a/b'"),
    ({"results_dir": "afile"}, "grid.results_dir: 'afile' is a file"),
]


@pytest.mark.parametrize(("change", "must"), GRIDS, ids=[m for _, m in GRIDS])
def test_bad_grid(change: dict, must: str, sandbox: Path, capsys: pytest.CaptureFixture[str]) -> None:
    grid = {"base": LENET, "starts": [{"scheme": "xavier_normal"}], "seeds": [1],
            "output_dir": str(sandbox / "out"), **change}
    (sandbox / "grid.yaml").write_text(yaml.safe_dump(grid))
    assert compare([str(sandbox / "grid.yaml")]) == 2
    assert must in error_line(capsys)
    assert not created(sandbox)


CLI = [
    (["--workers", "0"], "--workers: 0"), (["--cell", "7"], "--cell: 7"), (["--cell", "-1"], "--cell: -1"),
    (["--gather", "{tmp}/nothing-here"], "--gather: no finished run"),
    (["--gather", "{tmp}/truncated"], "truncated/results.json is not readable JSON"),
    (["--gather", "{tmp}/a-list"], "a-list/results.json is not a run's results"),
    (["--wandb-sweep", "{tmp}/afile/sweep.yaml"], "--wandb-sweep: cannot write"),
    (["--gather-wandb", "someone/a-project"], "--gather-wandb: 'someone/a-project' is a W&B project"),
]


@pytest.mark.parametrize(("args", "must"), CLI, ids=[m for _, m in CLI])
def test_bad_compare_arguments(args: list[str], must: str, sandbox: Path, capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    (sandbox / "nothing-here").mkdir()
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(sandbox / "no-netrc"))
    for name, text in (("truncated", '{"finished": true, "rou'), ("a-list", "[]")):
        (sandbox / name).mkdir()
        (sandbox / name / "results.json").write_text(text)
    grid = {"base": LENET, "seeds": [1], "output_dir": str(sandbox / "out")}
    (sandbox / "grid.yaml").write_text(yaml.safe_dump(grid))
    assert compare([str(sandbox / "grid.yaml"), *[a.format(tmp=sandbox) for a in args]]) == 2
    assert must in error_line(capsys)
    assert not created(sandbox) - {"nothing-here", "truncated", "a-list"}


INSPECT = [
    (["--rows", "100000", "--cols", "100000"], "--rows/--cols"),
    (["--source", "torch", "--test-repro"], "--test-repro"),
    (["--corner", "-1"], "--corner: -1"), (["--rows", "0"], "--rows/--cols: 0×784"),
    (["--cols", "-3"], "--rows/--cols"),
    (["--scheme", "he"], "init.scheme: 'he'"), (["--source", "quantum"], "init.source: 'quantum'"),
    (["--scale", "-1"], "init.scale"), (["--seed", "-1"], "init.seed: -1"), (["--test-repro", "-2"], "--test-repro"),
    # issue 20: every mode bounded, degenerate sizes and names refused
    (["--test-repro", "1000000000"], "--test-repro: 1000000000 regenerations"),
    (["--scheme", "orthogonal", "--rows", "16384", "--cols", "16384"], "too large for the orthogonal scheme"),
    (["--compare-schemes", "--rows", "4096", "--cols", "4096"], "too large for the orthogonal scheme"),
    (["--rows", "1", "--cols", "1"], "--rows/--cols: 1×1"), (["--name", ""], "--name: ''"),
    (["--name", "a.b"], "--name: 'a.b'"),
]


@pytest.mark.parametrize(("args", "must"), INSPECT, ids=[m for _, m in INSPECT])
def test_bad_inspect_arguments(args: list[str], must: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert inspect_tool(args) == 2
    assert must in error_line(capsys)


GENERATIVE = [
    (["fit", "vae"], "zoo: no runs given"), (["fit", "vae", "{tmp}/afile"], "is not a run directory"),
    (["fit", "vae", "{tmp}/nowhere"], "is not a run directory"), (["fit", "vae", "x", "--steps", "0"], "--steps: 0"),
    (["fit", "vae", "x", "--latent", "-1"], "--latent: -1"), (["fit", "vae", "x", "--slice", "0"], "--slice: 0"),
    (["fit", "ghn", "run-dir"], "takes no run directories"),
    (["fit", "ghn", "--datasets", "imagenet"], "--datasets: 'imagenet'"),
    (["fit", "ghn", "--models", "gpt5"], "--models: model.name: 'gpt5'"),
    # issue 22: every dataset is found before the first zoo run trains (MNIST is here, CIFAR-10 is not)
    (["zoo", LENET, "data.download=false", "--datasets", "mnist", "cifar10", "--seeds", "0"],
     "zoo: CIFAR-10 not found"),
]


@pytest.mark.parametrize(("args", "must"), GENERATIVE, ids=[m for _, m in GENERATIVE])
def test_bad_generative_arguments(args: list[str], must: str, sandbox: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert generative([a.format(tmp=sandbox) for a in args]) == 2
    assert must in error_line(capsys)
    assert not created(sandbox)


def test_the_table_is_at_least_130_inputs() -> None:
    assert len(OVERRIDES) + len(FILES) + len(GRIDS) + len(CLI) + len(INSPECT) + len(GENERATIVE) >= 130


def test_the_readme_states_the_table_size() -> None:
    """The README's count of bad inputs is this table's, so it cannot go stale."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    total = len(OVERRIDES) + len(FILES) + len(GRIDS) + len(CLI) + len(INSPECT) + len(GENERATIVE)
    assert f"`tests/test_bad_inputs.py` holds {total} such" in readme.replace("\n", " ")

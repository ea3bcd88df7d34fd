"""Hostile input on the command line: each bad value gets one line naming it, exit 2, nothing written (issue 13)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import torch

from lottery.compare import main as compare
from lottery.config import load
from lottery.inspect import main as inspect
from lottery.runner import run_dir
from lottery.train import main
from tests.data_fixtures import REAL_ROOT, fake_mnist
from tests.lightning_helpers import crash_at_epoch
from tests.test_train_cli import CONFIGS, QUICK, needs_mnist


@pytest.mark.parametrize("name", ["../../x", "a/b", "..", "a\\b", "", "x y"])
def test_names_cannot_leave_the_output_dir(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [str(CONFIGS / "lenet300_mnist.yaml"), f"name={name!r}", f"output_dir={tmp_path / 'o'}"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: name: ") and "no path separators" in err and "\n" not in err
    assert not (tmp_path / "o").exists() and not (tmp_path.parent / "x").exists()


@needs_mnist
def test_rewind_step_beyond_the_first_round_is_refused_before_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOTTERY_DATA", str(REAL_ROOT))
    args = [str(CONFIGS / "lenet300_mnist.yaml"), "prune.rounds=3", "prune.epochs_per_round=1", "prune.rewind=step",
            f"output_dir={tmp_path}", *QUICK]  # 1,200 images / 60 = 20 steps a round
    assert main([*args, "prune.rewind_step=21"]) == 2
    err = capsys.readouterr().err
    assert "prune.rewind_step: 21 is not valid; the snapshot must be taken within the first round (steps 0..20)" in err
    assert not any(tmp_path.iterdir())
    assert main([*args, "prune.rewind_step=20"]) == 0  # the weights after round 1's last step


@needs_mnist
def test_resuming_with_another_thread_count_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LOTTERY_DATA", str(REAL_ROOT))
    args = [str(CONFIGS / "lenet300_mnist.yaml"), "prune.rounds=3", "prune.epochs_per_round=1",
            f"output_dir={tmp_path}", *QUICK]  # QUICK ends with train.threads=1
    crash_at_epoch(2, lambda: main(args))
    monkeypatch.setenv("LOTTERY_DATA", str(REAL_ROOT))
    assert main([*args, "train.threads=2"]) == 2
    err = capsys.readouterr().err
    assert "train.threads: " in err and "was written with 1 threads; resuming with 2" in err
    assert (run_dir(load(args[0], args[1:])) / "checkpoints" / "last.ckpt").is_file()  # nothing lost
    assert main(args) == 0  # the same thread count resumes


@pytest.mark.parametrize(("override", "message"), [
    ("train.accelerator=gpu", "train.accelerator: 'gpu' is not valid on this machine"),
    ("train.devices=0", "train.devices: 0 is not valid on this machine"),
    ("train.strategy=nope", "train.strategy: 'nope' is not valid on this machine"),
    ("train.precision=banana", "train.precision: 'banana' is not valid on this machine"),
])
def test_trainer_settings_are_checked_before_anything_is_written(
    override: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if override.endswith("gpu") and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    monkeypatch.setenv("LOTTERY_DATA", str(fake_mnist(tmp_path / "data")))
    assert main([str(CONFIGS / "lenet300_mnist.yaml"), override, f"output_dir={tmp_path / 'out'}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {message}") and "\n" not in err, err
    assert not (tmp_path / "out").exists()


UNBOUNDED = [
    ("prune.epochs_per_round=18446744073709551616", "prune.epochs_per_round: 18446744073709551616 is not valid"),
    ("prune.rounds=100000", "prune.rounds: 100000 is not valid; use an integer in 1..10000"),
    ("data.split_seed=-1", "data.split_seed: -1 is not valid"),
    ("prune.control_seed=-5", "prune.control_seed: -5 is not valid"),
    ("prune.prune_seed=18446744073709551616", "prune.prune_seed: 18446744073709551616 is not valid"),
    ("seed=18446744073709551616", "seed: 18446744073709551616 is not valid"),  # not reported as init.seed
    ("init.seed=-3", "init.seed: -3 is not valid"),
    ("prune.sleeping_thresholds=[0.1,-1]", "prune.sleeping_thresholds[1]: -1.0 is not valid"),
    ("prune.sleeping_relative=[-0.5]", "prune.sleeping_relative[0]: -0.5 is not valid"),
    ("prune.sleeping_check=-0.1", "prune.sleeping_check: -0.1 is not valid"),
]


@pytest.mark.parametrize(("override", "message"), UNBOUNDED, ids=[o for o, _ in UNBOUNDED])
def test_unbounded_values_get_one_line_naming_the_field(override: str, message: str, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(CONFIGS / "lenet300_mnist.yaml"), override, f"output_dir={tmp_path / 'out'}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {message}") and "\n" not in err, err
    assert not (tmp_path / "out").exists()


def test_an_empty_config_file_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing yet\n")
    assert main([str(empty), f"output_dir={tmp_path / 'out'}"]) == 2
    assert f"config file {str(empty)!r} is empty" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def _gz(blob: bytes) -> bytes:
    return gzip.compress(blob)


def _raw(path: Path) -> bytes:
    return gzip.decompress(path.read_bytes())


DATA_DAMAGE = [
    ("truncated .gz", "train-images-idx3-ubyte.gz", lambda p: p.read_bytes()[: len(p.read_bytes()) // 2],
     "is not a valid gzip file (EOFError"),
    ("bit-flipped .gz", "train-labels-idx1-ubyte.gz",
     lambda p: (b := bytearray(p.read_bytes())).__setitem__(len(b) // 2, b[len(b) // 2] ^ 0xFF) or bytes(b),
     "is not a valid gzip file"),
    ("not gzip at all", "t10k-images-idx3-ubyte.gz", lambda p: b"plain text, not gzip\n" * 10,
     "is not a valid gzip file (BadGzipFile"),
    ("wrong magic", "t10k-labels-idx1-ubyte.gz", lambda p: _gz(b"\x00\x00\x08\x03" + _raw(p)[4:]),
     "is not an IDX file of the expected kind (magic number 0x00000803, expected 0x00000801)"),
    ("fewer labels", "train-labels-idx1-ubyte.gz",
     lambda p: _gz(b"\x00\x00\x08\x01" + (299).to_bytes(4, "big") + _raw(p)[8:8 + 299]),
     "holds 300 images but"),
    ("labels out of range", "t10k-labels-idx1-ubyte.gz", lambda p: _gz(_raw(p)[:8] + bytes([12]) * (len(_raw(p)) - 8)),
     "has labels 12..12; MNIST has classes 0..9"),
]


@pytest.mark.parametrize(("file", "damage", "message"), [d[1:] for d in DATA_DAMAGE], ids=[d[0] for d in DATA_DAMAGE])
def test_damaged_data_files_get_one_line_naming_the_file(file: str, damage, message: str, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    root = fake_mnist(tmp_path / "data")
    target = root / "MNIST" / "raw" / file
    target.write_bytes(damage(target))
    args = [str(CONFIGS / "lenet300_mnist.yaml"), f"data.root={root}", "data.download=false", "data.val_size=50",
            f"output_dir={tmp_path / 'out'}"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and str(target.name) in err and message in err and "\n" not in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("override", "message"), [
    ("output_dir={tmp}/afile", "output_dir: '{tmp}/afile' is not valid; {tmp}/afile is a file, not a folder"),
    ("output_dir={tmp}/afile/sub", "output_dir: '{tmp}/afile/sub' is not valid; {tmp}/afile is a file, not a folder"),
    ("model.name=os.path:join", "model.name: 'os.path:join' is a function, not an nn.Module class or a registered "
                                "builder"),
    ("model.name=os:path", "model.name: 'os:path' is a module, not an nn.Module class or a registered builder"),
])
def test_output_dir_and_model_path_errors(override: str, message: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "afile").write_text("in the way\n")
    assert main([str(CONFIGS / "lenet300_mnist.yaml"), override.format(tmp=tmp_path), "data.download=false",
                 f"data.root={tmp_path}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {message.format(tmp=tmp_path)}") and "\n" not in err, err
    assert (tmp_path / "afile").read_text() == "in the way\n"


def test_a_repeated_seed_is_named_as_such(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    grid = tmp_path / "g.yaml"
    grid.write_text(f"base: {CONFIGS / 'lenet300_mnist.yaml'}\nstarts: [{{scheme: xavier_normal}}]\nseeds: [1, 2, 1]\n")
    assert compare([str(grid)]) == 2
    assert "grid.seeds: 1 appears more than once in [1, 2, 1]; list each once" in capsys.readouterr().err


@pytest.mark.parametrize(("args", "message"), [
    (["--rows", "100000", "--cols", "100000"], "--rows/--cols: 100000×100000 is not valid; at most 268,435,456"),
    (["--source", "torch", "--test-repro"], "--test-repro: the 'torch' source is not regenerable"),
    (["--corner", "-1"], "--corner: -1 is not valid; use an integer ≥ 0"),
    (["--test-repro", "-2"], "--test-repro: -2 is not valid"),
    (["--rows", "0"], "--rows/--cols: 0×784 is not valid"),
])
def test_inspect_refuses_bad_arguments_in_one_line(args: list[str], message: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert inspect(args) == 2
    captured = capsys.readouterr()
    assert captured.err.strip().startswith(f"error: {message}") and "\n" not in captured.err.strip()
    assert captured.out == ""

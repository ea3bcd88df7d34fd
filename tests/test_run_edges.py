"""Where a run meets its machine (issue 31 §4): a full disk, a checkpoint that is a folder, a name too long for
the file system, a target the rates never reach, a link to a device, empty data files. Each gets one line and
exit 2, before training where it can be known then, and nothing is marked finished."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from lottery.train import main
from tests.data_fixtures import fake_mnist, write_idx
from tests.test_bad_inputs import LENET, error_line
from tests.test_train_cli import needs_mnist, quick_run


def test_a_target_density_the_rates_never_reach_is_refused_before_anything_is_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LOTTERY_DATA", str(fake_mnist(tmp_path / "data")))
    args = [LENET, "data.val_size=50", f"output_dir={tmp_path / 'out'}", "prune.rounds=null"]
    assert main([*args, "prune.target_density=0.5", "prune.rate=0"]) == 2
    assert error_line(capsys).startswith("error: prune.target_density: 0.5 is unreachable with these per-round rates "
                                         "(model.1.weight 0, model.3.weight 0, model.5.weight 0.1)")
    assert not (tmp_path / "out").exists()
    assert main([*args, "prune.target_density=0.5", "prune.rate=0.2", "--print-config"]) == 0  # the control


def test_an_output_dir_part_longer_than_a_file_name_is_refused(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main([LENET, f"output_dir={tmp_path / ('o' * 300)}"]) == 2
    assert "its part 'oooooooooooooooooooooooooooooo'… is 300 bytes long, over the 255" in error_line(capsys)
    assert list(tmp_path.iterdir()) == []


def test_paths_that_exist_but_are_the_wrong_kind_say_what_they_are(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "zero.yaml").symlink_to("/dev/zero")
    assert main([str(tmp_path / "zero.yaml")]) == 2
    assert "is a device or other special file, not a file" in error_line(capsys)
    assert main([str(tmp_path)]) == 2
    assert "is a folder, not a file" in error_line(capsys)
    (tmp_path / "gone.yaml").symlink_to(tmp_path / "nowhere")
    assert main([str(tmp_path / "gone.yaml")]) == 2
    assert "is a symbolic link to" in error_line(capsys)
    assert main([LENET, f"prune.masks_from={tmp_path / 'zero.yaml'}", "--print-config"]) == 0  # read at the run


def test_empty_data_files_are_named_as_empty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    raw = fake_mnist(tmp_path / "data") / "MNIST" / "raw"
    write_idx(raw / "train-images-idx3-ubyte.gz", np.zeros((0, 28, 28), np.uint8))
    write_idx(raw / "train-labels-idx1-ubyte.gz", np.zeros((0,), np.uint8))
    monkeypatch.setenv("LOTTERY_DATA", str(tmp_path / "data"))
    assert main([LENET, f"output_dir={tmp_path / 'out'}"]) == 2
    err = error_line(capsys)
    assert "the training images of mnist are empty (0 images)" in err and "0..-1" not in err
    assert not (tmp_path / "out").exists()


@needs_mnist
def test_a_checkpoint_that_is_a_folder_is_refused_before_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    args, path = quick_run(tmp_path, monkeypatch)
    (path / "checkpoints" / "last.ckpt").mkdir(parents=True)
    assert main(args) == 2
    assert error_line(capsys) == (f"error: checkpoint {path / 'checkpoints' / 'last.ckpt'} is not a file; delete it "
                                  "(or pass --force) to start the run over")
    assert not (path / "rounds.json").exists() and (path / "checkpoints" / "last.ckpt").is_dir()


@pytest.fixture
def small_disk(tmp_path: Path) -> Path:
    """A real 300 KB tmpfs (root only; skipped elsewhere), unmounted afterwards."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(disk)], capture_output=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield disk
    subprocess.run(["umount", str(disk)], check=True)


@needs_mnist
@pytest.mark.parametrize("checkpoint", [True, False])
def test_a_disk_that_fills_while_training_gives_one_line(checkpoint: bool, small_disk: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    args, _ = quick_run(small_disk, monkeypatch)
    assert main([*args, f"train.checkpoint={str(checkpoint).lower()}"]) == 2
    out = capsys.readouterr().err.strip()
    err = out.splitlines()[-1]  # after the round lines of what did train
    assert "Traceback" not in out and out.count("error: ") == 1
    assert err.startswith("error: output_dir: cannot write ") and "(No space left on device)" in err
    assert not list(small_disk.rglob("results.json")) and not list(small_disk.rglob(".*.tmp"))


@needs_mnist
def test_a_finished_run_is_not_the_answer_for_another_thread_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    args, path = quick_run(tmp_path, monkeypatch)  # train.threads=1
    assert main(args) == 0
    capsys.readouterr()
    assert main([*args, "train.threads=2"]) == 2  # the same run name: threads are not part of it
    assert error_line(capsys).startswith(f"error: train.threads: {path} was trained with 1 thread(s), and 2 give other "
                                         "numbers")
    assert main(args) == 0  # the same count: finished already, nothing to do
    assert main([*args, "train.threads=2", "--force"]) == 0
    assert json.loads((path / "results.json").read_text())["environment"]["threads"] == 2

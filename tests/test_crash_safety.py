"""Checkpoints and disks: damage is named, a failed or killed write leaves the previous state whole (issue 13)."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lottery import checkpoints, runner
from lottery.checkpoints import AtomicCheckpointIO, accepted_hashes, sidecar
from lottery.config import load
from lottery.runner import run_dir
from lottery.train import main
from tests.data_fixtures import REAL_ROOT
from tests.lightning_helpers import crash_at_epoch
from tests.test_train_cli import CONFIGS, QUICK, needs_mnist, quick_run


def _flip_middle(data: bytes) -> bytes:
    i = len(data) // 2
    return data[:i] + bytes([data[i] ^ 0x10]) + data[i + 1 :]


def _nan_weights(data: bytes) -> bytes:
    ckpt = torch.load(io.BytesIO(data), weights_only=True)
    next(iter(ckpt["state_dict"].values())).view(-1)[:3] = float("nan")
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    return buf.getvalue()


def _nan_moments(data: bytes) -> bytes:
    """Weights finite, Adam's first moments not: the first step after a resume would be NaN."""
    ckpt = torch.load(io.BytesIO(data), weights_only=True)
    shape = next(iter(ckpt["state_dict"].values())).shape  # a round's first epoch starts with empty moments
    moments = {"step": torch.tensor(1.0), "exp_avg": torch.zeros(shape), "exp_avg_sq": torch.zeros(shape)}
    ckpt["optimizer_states"][0]["state"].setdefault(0, moments)["exp_avg"].view(-1)[:3] = float("nan")
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    return buf.getvalue()


def _foreign(data: bytes) -> bytes:
    ckpt = torch.load(io.BytesIO(data), weights_only=True)
    ckpt["state_dict"] = {k: torch.zeros(3, 3) for k in ckpt["state_dict"]}
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    return buf.getvalue()


CORRUPTIONS = [
    ("bit flip", _flip_middle, True, "is corrupted (its content hash differs"),
    ("truncated", lambda d: d[: len(d) // 3], False, "cannot be read (truncated, or not a checkpoint"),
    ("empty", lambda d: b"", False, "is empty"),
    ("random bytes", lambda d: bytes(range(256)) * 64, False, "cannot be read"),
    ("non-finite weights", _nan_weights, False, "is damaged: it holds non-finite values (3 in 'state_dict'/"),
    ("non-finite moments", _nan_moments, False, "holds non-finite values (3 in 'optimizer_states'/0/'state'/"),
    ("another network", _foreign, False, "was written for another network"),
]


@needs_mnist
def test_damaged_checkpoints_are_refused_naming_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """Each damage gets one clean line (exit 2) naming the file; the hash sidecar catches bytes that still
    load. Without the sidecar (an older run), the loadable-but-wrong cases are still caught by content."""
    monkeypatch.setenv("LOTTERY_DATA", str(REAL_ROOT))
    args = [str(CONFIGS / "lenet300_mnist.yaml"), "prune.rounds=3", "prune.epochs_per_round=1",
            f"output_dir={tmp_path}", *QUICK]
    crash_at_epoch(2, lambda: main(args))
    monkeypatch.setenv("LOTTERY_DATA", str(REAL_ROOT))
    ckpt = run_dir(load(args[0], args[1:])) / "checkpoints" / "last.ckpt"
    pristine, stamp = ckpt.read_bytes(), sidecar(ckpt).read_text()
    assert len(stamp.strip()) == 64 and not list(ckpt.parent.glob(".*.tmp"))  # written whole, hash beside
    for _, damage, needs_stamp, message in CORRUPTIONS:
        for with_stamp in (True, False) if not needs_stamp else (True,):
            ckpt.write_bytes(damage(pristine))
            if with_stamp:
                sidecar(ckpt).write_text(stamp)
            else:
                sidecar(ckpt).unlink(missing_ok=True)
            capsys.readouterr()
            assert main(args) == 2
            err = capsys.readouterr().err.strip()
            expected = message if not with_stamp or message == "is empty" else "content hash differs"
            assert err.startswith(f"error: checkpoint {ckpt} ") and expected in err and "\n" not in err, err
            assert "delete it (or pass --force)" in err and ckpt.is_file()  # nothing deleted for the user
    ckpt.write_bytes(pristine)
    sidecar(ckpt).write_text(stamp)
    assert main(args) == 0  # the intact checkpoint resumes


def test_a_full_disk_is_reported_before_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    assert main([str(CONFIGS / "lenet300_mnist.yaml"), f"output_dir={tmp_path / 'out'}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: output_dir: '{tmp_path / 'out'}' is not writable") and "No space left" in err
    assert not (tmp_path / "out").exists()


@needs_mnist
def test_a_disk_that_fills_after_the_probe_leaves_no_run_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    args, path = quick_run(tmp_path, monkeypatch)

    def full(target: Path, text: str) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)  # as a real write gets this far before ENOSPC
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(runner, "write_text", full)
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: output_dir: cannot write the run directory {path} (No space left") and \
        "\n" not in err, err
    assert not path.exists()  # never created, so a rerun starts cleanly


def test_a_failed_checkpoint_write_leaves_the_previous_one_whole(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    io_ = AtomicCheckpointIO()
    path = tmp_path / "checkpoints" / "last.ckpt"
    io_.save_checkpoint({"state_dict": {"w": torch.ones(3)}, "epoch": 1}, path)
    before = path.read_bytes()
    assert sidecar(path).read_text().strip() == hashlib.sha256(before).hexdigest()

    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space left"):
        io_.save_checkpoint({"state_dict": {"w": torch.zeros(1000)}, "epoch": 2}, path)
    assert path.read_bytes() == before and sorted(p.name for p in path.parent.iterdir()) == [
        "last.ckpt", "last.ckpt.sha256"]  # no temporary left behind, the old pair intact


def test_a_kill_between_checkpoint_and_hash_leaves_a_pair_that_verifies(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The sidecar vouches for the new hash before the checkpoint is renamed into place, so a kill right
    after the rename (before the final sidecar write) leaves a newer, whole checkpoint that still verifies."""


    path = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.ones(3)}, "epoch": 1}, path)
    writes = {"n": 0}
    real = checkpoints.write_text

    def killed_after_rename(target: Path, text: str) -> None:
        writes["n"] += 1
        if writes["n"] == 2:  # the sidecar's final write: the process dies here
            raise KeyboardInterrupt
        real(target, text)

    monkeypatch.setattr(checkpoints, "write_text", killed_after_rename)
    with pytest.raises(KeyboardInterrupt):
        AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.zeros(3)}, "epoch": 2}, path)
    new = hashlib.sha256(path.read_bytes()).hexdigest()
    assert torch.load(path, weights_only=True)["epoch"] == 2 and new in accepted_hashes(path)
    net = torch.nn.Module()
    net.w = torch.nn.Parameter(torch.zeros(3))
    with pytest.raises(Exception, match="has no valid global_step"):  # past the hash check: content is judged
        checkpoints.verify(path, net)


@needs_mnist
def test_a_second_process_on_the_same_run_directory_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    args, path = quick_run(tmp_path, monkeypatch)
    holder = subprocess.Popen(  # another process holds the run, as a first `lottery.train` would
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from lottery.rundir import run_lock\n"
         "with run_lock(Path(sys.argv[1])):\n print('held', flush=True); time.sleep(60)", str(path)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert main(args) == 2
        err = capsys.readouterr().err.strip()
        assert err == (f"error: output_dir: {path} is in use by process {holder.pid}; wait for it to finish (or "
                       "stop it) before running the same config again"), err
        assert not path.exists()  # nothing written into the held run
    finally:
        holder.kill()
        holder.wait()
    assert main(args) == 0  # once it is gone, the run goes ahead

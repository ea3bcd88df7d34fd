"""A signal is never success (issue 32): SIGTERM (a scheduler's preemption or time limit) exits 143 and SIGINT
(Ctrl+C) 130, each with one line saying what to do; nothing is marked finished, and the same command resumes
to the numbers of a run that was never stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lottery.config import load
from lottery.runner import run_dir
from tests.test_train_cli import CONFIGS, needs_mnist

ARGS = ["prune.rounds=3", "prune.epochs_per_round=2", "data.train_subset=6000", "data.val_size=500",
        "data.test_subset=1000", "train.progress_bar=false", "train.threads=1"]


def command(out: Path) -> list[str]:
    return [sys.executable, "-m", "lottery.train", str(CONFIGS / "lenet300_mnist.yaml"), *ARGS, f"output_dir={out}"]


def env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline", "PYTHONPATH": str(CONFIGS.parent)}


def folder(out: Path) -> Path:
    return run_dir(load(str(CONFIGS / "lenet300_mnist.yaml"), [*ARGS, f"output_dir={out}"]))


def foreground() -> None:
    """The child's SIGINT as a terminal gives a foreground process: a background job (``cmd &`` in a script, so
    CI run as ``nohup bash .ci/run &``) inherits SIGINT ignored, and Python then keeps ignoring it, as it should."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@needs_mnist
def test_signals_exit_non_zero_and_the_run_resumes_alike(tmp_path: Path, mnist_root: Path) -> None:
    whole = subprocess.run(command(tmp_path / "whole"), env=env(), capture_output=True, text=True, timeout=600)
    assert whole.returncode == 0, whole.stderr[-2000:]
    expected = json.loads((folder(tmp_path / "whole") / "results.json").read_text())["rounds"]
    for sig, code, name in ((signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "SIGINT")):
        out = tmp_path / name
        proc = subprocess.Popen(command(out), env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                preexec_fn=foreground)
        deadline = time.monotonic() + 300
        while not (folder(out) / "checkpoints" / "last.ckpt").is_file() and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.05)
        proc.send_signal(sig)
        err = proc.communicate(timeout=300)[1]
        assert proc.returncode == code, err[-2000:]
        last = err.strip().splitlines()[-1]
        assert last.startswith(f"interrupted: {name} in round ") and "Rerun the same command to resume" in last
        assert "Traceback" not in err and not (folder(out) / "results.json").exists()
        again = subprocess.run(command(out), env=env(), capture_output=True, text=True, timeout=600)
        assert again.returncode == 0, again.stderr[-2000:]
        rounds = json.loads((folder(out) / "results.json").read_text())["rounds"]
        assert rounds == expected, name  # bit for bit, every field of every round


def test_a_reader_that_goes_away_gets_no_traceback() -> None:
    """`... --list | head -1`: the pipe is closed when we write; exit 141 (SIGPIPE), nothing on stderr."""
    lister = subprocess.Popen([sys.executable, "-m", "lottery.compare", str(CONFIGS / "compare_quick.yaml"),
                               "--list"], env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert lister.stdout is not None
    lister.stdout.close()  # before the child has imported torch, so before it writes a byte
    _, err = lister.communicate(timeout=120)
    assert lister.returncode == 141 and b"Traceback" not in err, err.decode()[-2000:]


@pytest.mark.parametrize("code", [130, 141, 143])
def test_the_readme_documents_the_signal_exit_codes(code: int) -> None:
    readme = (CONFIGS.parent / "README.md").read_text()
    assert f"| {code} |" in readme

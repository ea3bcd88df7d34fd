"""DDP through the command line (issue 31 §3): ``lottery.train … train.strategy=ddp train.devices=2`` on two CPU
ranks (gloo). Lightning's launcher re-runs the command for rank 1; only rank 0 locks and writes, each rank
trains on its half of every batch, the ranks' masks are compared every round, and a run killed mid-way
resumes to the same numbers as one that was not."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from lottery.config import load
from lottery.runner import run_dir
from tests.test_train_cli import CONFIGS, needs_mnist

ARGS = ["prune.rounds=4", "prune.epochs_per_round=1", "data.train_subset=6000", "data.val_size=300",
        "data.test_subset=600", "train.progress_bar=false", "train.threads=1", "train.accelerator=cpu",
        "train.strategy=ddp", "train.devices=2"]


def command(out: Path) -> list[str]:
    return [sys.executable, "-m", "lottery.train", str(CONFIGS / "lenet300_mnist.yaml"), *ARGS, f"output_dir={out}"]


def env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline", "PYTHONPATH": str(CONFIGS.parent)}


@needs_mnist
def test_ddp_on_two_cpu_ranks_through_the_cli_finishes_and_resumes_alike(tmp_path: Path, mnist_root: Path) -> None:
    whole = subprocess.run(command(tmp_path / "whole"), env=env(), capture_output=True, text=True, timeout=600)
    assert whole.returncode == 0, whole.stderr[-2000:]
    path = run_dir(load(str(CONFIGS / "lenet300_mnist.yaml"), [*ARGS, f"output_dir={tmp_path / 'whole'}"]))
    result = json.loads((path / "results.json").read_text())
    assert result["finished"] and [r["round"] for r in result["rounds"]] == [0, 1, 2, 3]
    assert sorted(p.name for p in (path / "masks").iterdir()) == [f"round-0{k}.npz" for k in range(4)]
    assert len(list(tmp_path.rglob("results.json"))) == 1 and "in use by process" not in whole.stderr
    assert whole.stderr.count("round 2/3 ") == 1  # one line per round: rank 1 says nothing

    # killed (both ranks, as a scheduler would) once round 1 is checkpointed, then the same command again
    cut = tmp_path / "cut"
    ckpt = run_dir(load(str(CONFIGS / "lenet300_mnist.yaml"), [*ARGS, f"output_dir={cut}"])) / "checkpoints"
    proc = subprocess.Popen(command(cut), env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.monotonic() + 300
    while not (ckpt / "last.ckpt").is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    cut_run = ckpt.parent
    assert not (cut_run / "results.json").exists(), "the run ended before it could be killed; give it more work"
    again = subprocess.run(command(cut), env=env(), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "resuming from" in again.stderr
    resumed = json.loads((cut_run / "results.json").read_text())
    keys = ("remaining_pct", "val_loss", "test_acc", "epochs_to_best")
    assert [{k: r[k] for k in keys} for r in resumed["rounds"]] == [{k: r[k] for k in keys} for r in result["rounds"]]

"""Grids and runs on a real SLURM cluster (issue 33): a one-node cluster of Debian's slurm-wlm and munge,
started by the ``slurm_cluster`` fixture; without them every test here skips with one line (``-k slurm``)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from lottery.compare import main as compare
from lottery.config import load
from lottery.grid import load_grid
from lottery.launchers.slurm import read_jobs
from lottery.rundir import run_dir
from tests.data_fixtures import REAL_ROOT
from tests.test_compare import grid_file
from tests.test_ddp_cli import ARGS as DDP_ARGS
from tests.test_ddp_cli import command as ddp_command
from tests.test_ddp_cli import env as ddp_env
from tests.test_train_cli import CONFIGS

pytestmark = pytest.mark.usefixtures("mnist_root")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def cluster(slurm_cluster, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SLURM_CONF", str(slurm_cluster.conf))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the jobs inherit the submitting shell's environment
    return slurm_cluster


def squeue(cluster) -> list[str]:
    out = subprocess.run(["squeue", "-h", "-r", "-o", "%i"], env=cluster.env(), capture_output=True, text=True)
    return out.stdout.split()


def wait_idle(cluster, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while squeue(cluster):
        assert time.monotonic() < deadline, f"jobs still queued after {seconds:.0f} s: {squeue(cluster)}"
        time.sleep(0.5)


def scontrol(cluster, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["scontrol", *args], env=cluster.env(), capture_output=True, text=True)


def release_held(cluster, job: str, seconds: float = 60) -> None:
    """SLURM holds a requeued job back for about two minutes (pending, reason BeginTime): start it at once. An
    update sent before the requeue has landed succeeds and changes nothing, hence the wait for the hold."""
    deadline, held = time.monotonic() + seconds, False
    while True:
        out = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T %r"], env=cluster.env(), capture_output=True,
                             text=True).stdout.split()
        if out[:1] == ["PENDING"]:
            held = True
            if out[1:] == ["BeginTime"]:
                scontrol(cluster, "update", f"JobId={job}", "StartTime=now")
        elif held:  # running again, or already done
            return
        assert time.monotonic() < deadline, f"job {job} not restarted after {seconds:.0f} s: {out}"
        time.sleep(0.2)


def logged(caplog: pytest.LogCaptureFixture) -> str:
    text = "\n".join(r.getMessage() for r in caplog.records)
    caplog.clear()
    return text


def test_slurm_grid_gives_the_local_table_byte_for_byte(cluster, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        caplog: pytest.LogCaptureFixture) -> None:
    """2 starts × 2 seeds × 2 rounds plus a reinit control, packed two by two: IMP array, controls' array after
    it, gather job; the table equals the local launcher's."""
    extra = {"controls": ["reinit"], "members_per_process": 2}
    assert compare([str(grid_file(tmp_path, "local", **extra)), "--no-plots"]) == 0
    path = grid_file(tmp_path, "slurm", **extra)
    with caplog.at_level(logging.INFO, logger="lottery"):
        assert compare([str(path), "--launcher", "slurm", "--no-plots"]) == 0
    err = logged(caplog)
    assert "submitted 4 IMP cells in 2 array tasks" in err and "4 control cells in 2 tasks" in err, err
    wait_idle(cluster)
    assert (tmp_path / "slurm" / "results.csv").read_bytes() == (tmp_path / "local" / "results.csv").read_bytes()
    assert compare([str(path), "--status"]) == 0
    status = capsys.readouterr().out
    assert "8 cells: 8 finished" in status and "gather job" in status, status
    # the W&B group is the grid's, whichever launcher ran it
    grid, cells = load_grid(path)
    assert {c.config.wandb.group for c in cells} == {"tiny"}
    # nothing is left to submit: a rerun records and tables what finished, and submits no job
    jobs = read_jobs(grid)
    assert compare([str(path), "--launcher", "slurm", "--no-plots"]) == 0
    assert read_jobs(grid) == jobs and not squeue(cluster)


# how a job is stopped mid-round, and what its log must say about it: SLURM's own requeue (SIGTERM: the run
# exits 143, nothing finished), and submitit's signal before a time limit or preemption (USR2: the job is
# checkpointed (Checkpointable) and requeued by submitit itself)
STOPS = {"scontrol requeue": ("interrupted: SIGTERM", "exit code 143"),
         "USR2 (time limit)": ("Caught signal SIGUSR2", "Calling checkpoint method")}


@pytest.mark.parametrize("how", list(STOPS))
def test_slurm_requeued_cell_resumes_and_ends_identical(cluster, tmp_path: Path, how: str) -> None:
    """Stopped mid-round and requeued, the job resumes from last.ckpt and the table equals an uninterrupted
    run's."""
    one = {"starts": [{"scheme": "xavier_normal"}], "seeds": [3]}
    overrides = {"data": {"root": str(REAL_ROOT), "train_subset": 6000, "val_size": 300, "test_subset": 600,
                          "download": False},
                 "prune": {"rounds": 4, "epochs_per_round": 2}, "train": {"progress_bar": False, "threads": 1}}
    assert compare([str(grid_file(tmp_path, "whole", overrides=overrides, **one)), "--no-plots"]) == 0
    path = grid_file(tmp_path, "cut", overrides=overrides, **one)
    assert compare([str(path), "--launcher", "slurm", "--no-plots"]) == 0
    grid, cells = load_grid(path)
    job = read_jobs(grid)[cells[0].config.run_name]
    ckpt = run_dir(cells[0].config) / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 120
    while not ckpt.is_file():
        assert time.monotonic() < deadline, "no checkpoint after 120 s"
        time.sleep(0.05)
    usr2 = ["scancel", "--signal=USR2", job["job"]]
    stop = ["scontrol", "requeue", job["job"]] if how == "scontrol requeue" else usr2
    assert subprocess.run(stop, env=cluster.env(), capture_output=True).returncode == 0
    release_held(cluster, job["job"])
    wait_idle(cluster)
    log = Path(job["stderr"]).read_text()
    assert all(s in log for s in STOPS[how]), "the job ended before it was stopped: give it more work\n" + log[-2000:]
    assert "resuming from" in log and log.count("run finished") == 1, log[-2000:]
    assert (tmp_path / "cut" / "results.csv").read_bytes() == (tmp_path / "whole" / "results.csv").read_bytes()


def test_slurm_failed_cell_shows_in_status_and_the_rest_finish(cluster, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str],
                                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="lottery")
    extra = {"starts": [{"scheme": "xavier_normal"}], "controls": ["reinit"]}
    path = grid_file(tmp_path, "fail", **extra)
    grid, cells = load_grid(path)
    broken = run_dir(cells[1].config) / "checkpoints" / "last.ckpt"  # seed 2's run: a damaged checkpoint
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"not a checkpoint")
    assert compare([str(path), "--launcher", "slurm", "--no-plots"]) == 0
    assert compare([str(path), "--launcher", "slurm", "--no-plots"]) == 0  # at once: everything is queued
    err = logged(caplog)
    assert sum(ln.startswith("submitted ") for ln in err.splitlines()) == 1 and err.count("queued already") == 4, err
    wait_idle(cluster)
    assert compare([str(path), "--status"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("· finished · " + str(run_dir(cells[0].config)))
    assert " · failed · job " in lines[1] and "cannot be read" in lines[1] and str(broken) in lines[1], lines[1]
    assert " · failed · job " in lines[3] and "the masks of its ticket, cell 2" in lines[3], lines[3]
    assert "4 cells: 2 finished, 2 failed" in lines[4]
    log = lines[1].split(" · log ")[1].split(" · ")[0]
    assert Path(log).is_file()
    table = (tmp_path / "fail" / "results.csv").read_text()  # the gather job tabled what finished
    assert "seed" in table and len(table.splitlines()) == 1 + 2 * 2  # 2 cells × 2 rounds
    broken.unlink()  # the user fixes it; a rerun submits only the two cells without a result
    assert compare([str(path), "--launcher", "slurm", "--no-plots"]) == 0
    assert "submitted 1 IMP cells in 1 array tasks" in logged(caplog)
    wait_idle(cluster)
    assert compare([str(path), "--status"]) == 0
    assert "4 cells: 4 finished" in capsys.readouterr().out
    assert len((tmp_path / "fail" / "results.csv").read_text().splitlines()) == 1 + 4 * 2


def test_slurm_srun_ddp_on_two_tasks_matches_lightnings_own_ddp(cluster, tmp_path: Path) -> None:
    """The README's sbatch example: ``lottery.train`` under ``srun`` with 2 tasks (gloo on CPU). Lightning takes
    the ranks from SLURM; the ranks' masks are compared every round (a difference stops the run), and every
    round's masks equal those of the DDP run Lightning launches itself."""
    local = subprocess.run(ddp_command(tmp_path / "local"), env=ddp_env(), capture_output=True, text=True,
                           timeout=600)
    assert local.returncode == 0, local.stderr[-2000:]
    out = tmp_path / "srun.out"
    script = ROOT / "scripts" / "slurm_train.sbatch"
    job = subprocess.run(["sbatch", "--wait", f"--output={out}", "--time=10", str(script),
                          str(CONFIGS / "lenet300_mnist.yaml"), *DDP_ARGS, f"output_dir={tmp_path / 'srun'}"],
                         env={**ddp_env(), "SLURM_CONF": str(cluster.conf), "PYTHON": sys.executable},
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    log = out.read_text()
    assert job.returncode == 0, log[-2000:]
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in log and log.count("round 3/3 ") == 1, log[-2000:]
    runs = [run_dir(load(str(CONFIGS / "lenet300_mnist.yaml"), [*DDP_ARGS, f"output_dir={tmp_path / d}"]))
            for d in ("local", "srun")]
    assert json.loads((runs[1] / "results.json").read_text())["finished"]
    for k in range(4):
        a, b = (np.load(r / "masks" / f"round-0{k}.npz") for r in runs)
        assert sorted(a.files) == sorted(b.files) and all(np.array_equal(a[f], b[f]) for f in a.files), k

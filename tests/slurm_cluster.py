"""A real one-node SLURM cluster for the tests (Debian's ``slurm-wlm`` and ``munge``), in a folder of its own.

Everything it needs lives in that folder: the munge key, socket and log, Slurm's config, state, spool and
logs; ``SLURM_CONF`` points the client commands (``sbatch``, ``squeue``, ``scontrol``, submitit) at it.
``stop`` ends exactly the daemons ``start`` started. Needs root (``slurmd`` launches jobs as their user)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")


def missing() -> str | None:
    """Why no cluster can start here (one line), or None."""
    absent = [d for d in (*DAEMONS, "sbatch", "squeue", "scontrol", "srun") if shutil.which(d) is None
              and not Path(f"/usr/sbin/{d}").exists()]
    if absent:
        return f"SLURM is not installed ({', '.join(absent)} missing): apt-get install slurm-wlm munge"
    if os.geteuid() != 0:
        return "a one-node SLURM cluster needs root here (slurmd runs jobs as their user)"
    return None


def _daemon(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


@dataclass
class Cluster:
    root: Path
    pids: dict[str, int]
    conf: Path

    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def stop(self) -> None:
        for name in reversed(DAEMONS):
            pid = self.pids.get(name)
            if pid:
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
                for _ in range(100):
                    try:
                        os.kill(pid, 0)
                    except ProcessLookupError:
                        break
                    time.sleep(0.05)


def _config(root: Path, host: str, cpus: int, munge_socket: Path) -> str:
    return "\n".join([
        "ClusterName=lottery-tests",
        f"SlurmctldHost={host}",
        "SlurmUser=root", "SlurmdUser=root",
        "AuthType=auth/munge", f"AuthInfo=socket={munge_socket}",
        "CredType=cred/munge",
        "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none",
        "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core",
        "SchedulerType=sched/backfill", "SchedulerParameters=sched_interval=1",
        "JobCompType=jobcomp/none", "AccountingStorageType=accounting_storage/none",
        "MpiDefault=none", "ReturnToService=2", "KillWait=5", "MinJobAge=600",
        f"SlurmctldPort={_free_port()}", f"SlurmdPort={_free_port()}",
        f"StateSaveLocation={root / 'state'}", f"SlurmdSpoolDir={root / 'spool'}",
        f"SlurmctldPidFile={root / 'slurmctld.pid'}", f"SlurmdPidFile={root / 'slurmd.pid'}",
        f"SlurmctldLogFile={root / 'slurmctld.log'}", f"SlurmdLogFile={root / 'slurmd.log'}",
        f"NodeName={host} CPUs={cpus} RealMemory=4000 State=UNKNOWN",
        f"PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP",
        "",
    ])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def _wait_for(what: str, check, log: Path, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-1500:] if log.exists() else "(no log)"
    raise RuntimeError(f"{what} did not come up in {seconds:.0f} s; its log ends:\n{tail}")


def start(root: Path, cpus: int | None = None) -> Cluster:
    """Start munged, slurmctld and slurmd with everything under ``root``; the node is ready when it returns."""
    root.mkdir(parents=True, exist_ok=True)
    for sub in ("state", "spool", "munge"):
        (root / sub).mkdir(exist_ok=True)
    (root / "munge").chmod(0o700)
    key = root / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    munge_socket = root / "munge" / "munge.socket"
    host = socket.gethostname().split(".")[0]
    conf = root / "slurm.conf"
    conf.write_text(_config(root, host, cpus or os.cpu_count() or 1, munge_socket))
    cluster = Cluster(root, {}, conf)
    env = cluster.env()
    try:
        subprocess.run([_daemon("munged"), "--force", f"--socket={munge_socket}", f"--key-file={key}",
                        f"--log-file={root / 'munge' / 'munged.log'}", f"--pid-file={root / 'munge' / 'munged.pid'}",
                        f"--seed-file={root / 'munge' / 'munged.seed'}"], check=True, env=env,
                       capture_output=True, timeout=30)
        cluster.pids["munged"] = int((root / "munge" / "munged.pid").read_text())
        for name in ("slurmctld", "slurmd"):
            subprocess.run([_daemon(name), "-f", str(conf)], check=True, env=env, capture_output=True, timeout=30)
            pid_file = root / f"{name}.pid"
            _wait_for(name, pid_file.exists, root / f"{name}.log")
            cluster.pids[name] = int(pid_file.read_text())

        def idle() -> bool:
            out = subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True)
            return out.returncode == 0 and out.stdout.strip() in ("idle", "mixed")
        _wait_for("the node", idle, root / "slurmd.log")
    except BaseException:
        cluster.stop()
        raise
    return cluster

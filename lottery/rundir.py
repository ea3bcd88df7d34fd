"""A run directory: where a config's run lives, how it ended (one test for every caller), and the lock
that keeps a second process out of it while it trains."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lottery.atomic import write_json
from lottery.config import Config, ConfigError


def run_dir(cfg: Config) -> Path:
    return Path(cfg.output_dir) / cfg.run_name


def read_results(path: Path, strict: bool = False) -> dict[str, Any] | None:
    """The run's ``results.json`` (written last, so its presence means the run ended): the one reader of it.
    None when absent; unreadable or malformed: None, or with ``strict`` a ``ConfigError`` naming the file."""
    file = path / "results.json"
    try:
        data = json.loads(file.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        if strict:
            raise ConfigError(f"{file} is not readable JSON ({type(e).__name__}); delete that run directory or "
                              "rerun it") from None
        return None
    if not isinstance(data, dict) or not isinstance(data.get("rounds"), list):
        if strict:
            raise ConfigError(f"{file} is not a run's results (a JSON object with rounds); delete that run "
                              "directory or rerun it")
        return None
    return data


def write_results(path: Path, record: dict[str, Any]) -> None:
    """The run's ``results.json``, written atomically and last (its presence means the run ended): the one
    writer of it."""
    write_json(path / "results.json", record)


def ended(data: dict[str, Any] | None) -> str | None:
    """``finished`` or ``diverged`` (both settled: rerunning repeats them), or None: the one test of it."""
    if data is None:
        return None
    return "finished" if data.get("finished") else "diverged" if data.get("diverged") else None


def outcome(path: Path) -> str | None:
    """How the run in ``path`` ended (None: not started, interrupted, or an unreadable ``results.json``)."""
    return ended(read_results(path))


def is_finished(path: Path) -> bool:
    return outcome(path) == "finished"


def diverged_message(result: dict[str, Any]) -> str:
    d = result["diverged"]
    return (f"{result['run']} diverged in round {d['round']}, epoch {d['epoch']} (step {d['step']}): "
            f"{d['what']}; lower optim.lr or init.scale (results.json records it, checkpoints/ keeps the last finite "
            "weights; --force to try again)")


def lock_holder(path: Path) -> str | None:
    """Who holds the run directory ``path`` now (``process 1234``), or None: nobody is training it."""
    lock = path.parent / f".{path.name}.lock"
    if not lock.is_file():
        return None
    with open(lock, "a+") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            return f.read().strip() or "another process"
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
    return None


@contextlib.contextmanager
def run_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on the run directory ``path`` (a file beside it, so --force's rmtree cannot
    remove it under the holder); a second process on the same run is refused with one line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "a+") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            raise ConfigError(f"output_dir: {path} is in use by {holder}; wait for it to finish (or stop it) "
                              "before running the same config again") from None
        f.seek(0)
        f.truncate()
        f.write(f"process {os.getpid()}\n")
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)

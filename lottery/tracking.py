"""Weights & Biases: per-run sparsity–accuracy curves, and one summary run per grid (mean ± std per start).

Per-round metrics are logged as ``lottery/*`` by the IMP callback; here they get ``lottery/remaining_pct``
as their x-axis (``define_metric``), and at the end of a run its rounds become a table and a line chart.
"""

from __future__ import annotations

import json
import os
import struct
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lottery.config import resolve
from lottery.results import identity

X_AXIS = "lottery/remaining_pct"


def wandb_credentials() -> bool:
    """Whether a W&B API key is at hand: ``WANDB_API_KEY``, or the server's entry in ``~/.netrc``."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path(os.environ.get("NETRC", "~/.netrc")).expanduser()
    host = urllib.parse.urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or ""
    try:
        return bool(host) and host in netrc.read_text()
    except OSError:
        return False


def wandb_logger(cfg: Any, path: Path, config: dict[str, Any]) -> Any:
    from pytorch_lightning.loggers import WandbLogger

    w = cfg.wandb
    if w.mode is not None:
        os.environ["WANDB_MODE"] = w.mode
    logger = WandbLogger(
        project=w.project, entity=w.entity, group=w.group or cfg.init_spec().label, tags=list(w.tags),
        name=cfg.run_name, id=cfg.run_name, resume="allow", save_dir=str(path), config=config, job_type="cell",
    )
    run = logger.experiment
    run.define_metric(X_AXIS)
    run.define_metric("lottery/*", step_metric=X_AXIS)
    return logger


def log_curves(logger: Any, rounds: Sequence[dict[str, Any]]) -> None:
    """The run's rounds as a table and a test-accuracy-vs-%-remaining line chart."""
    import wandb

    columns = ["round", "remaining_pct", "test_acc", "val_acc", "epochs_to_best"]
    table = wandb.Table(columns=columns, data=[[r.get(c) for c in columns] for r in rounds])
    logger.experiment.log({
        "rounds": table,
        "sparsity_accuracy": wandb.plot.line(table, "remaining_pct", "test_acc",
                                             title="test accuracy vs % weights remaining"),
    })


def summary_run(name: str, project: str, entity: str | None, tags: Sequence[str], curves: list[dict[str, Any]],
                directory: Path) -> str:
    """One run holding every start's mean ± std curve; returns its directory (offline) or URL."""
    import wandb

    run = wandb.init(project=project, entity=entity, name=f"{name}-summary", id=f"{name}-summary",
                     group=name, job_type="summary", tags=list(tags), dir=str(directory), resume="allow",
                     config={"grid": name})
    columns = ["model", "start", "round", "remaining_pct", "mean_test_acc", "std_test_acc", "n"]
    table = wandb.Table(columns=columns, data=[[c[k] for k in columns] for c in curves])
    run.define_metric("summary/remaining_pct")
    run.define_metric("summary/*", step_metric="summary/remaining_pct")
    for c in curves:
        run.log({"summary/remaining_pct": c["remaining_pct"],
                 f"summary/{c['model']}/{c['start']}/mean_test_acc": c["mean_test_acc"],
                 f"summary/{c['model']}/{c['start']}/std_test_acc": c["std_test_acc"]})
    starts = sorted({(c["model"], c["start"]) for c in curves})
    xs, ys, keys = [], [], []
    for model, start in starts:
        pts = sorted((c for c in curves if (c["model"], c["start"]) == (model, start)), key=lambda c: c["round"])
        xs.append([p["remaining_pct"] for p in pts])
        ys.append([p["mean_test_acc"] for p in pts])
        keys.append(f"{model} {start}")
    run.log({"mean_curves": table, "mean_test_acc_by_start": wandb.plot.line_series(
        xs=xs, ys=ys, keys=keys, title="mean test accuracy vs % weights remaining", xname="% remaining")})
    where = run.dir
    run.finish()
    return where


def read_records(path: Path) -> list[Any]:
    """The protobuf records of a W&B run file (``run-*.wandb``): a 7-byte header, then LevelDB-log blocks of
    32 KiB holding (crc32 u32, length u16, type u8) framed chunks; type 1 full, 2 first, 3 middle, 4 last."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, pos, block, pending, out = Path(path).read_bytes(), 7, 32768, b"", []
    if not data.startswith(b":W&B"):
        raise ValueError(f"{path} is not a W&B run file")
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is zero padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind == 0:
            break
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(pending)
            out.append(record)
    return out


def offline_history(run_file: Path) -> list[dict[str, Any]]:
    """Every ``run.log`` row of a W&B run file, values decoded from JSON (offline runs included)."""
    rows = []
    for record in read_records(run_file):
        if record.WhichOneof("record_type") == "history":
            row = {}
            for item in record.history.item:
                key = item.key or "/".join(item.nested_key)
                row[key] = json.loads(item.value_json)
            rows.append(row)
    return rows


def rounds_from_wandb(run_file: Path) -> list[dict[str, Any]]:
    """The per-round records a run logged (``lottery/*``), rebuilt from its W&B file."""
    rounds = []
    for row in offline_history(run_file):
        if X_AXIS in row and "lottery/round" in row:
            rounds.append({k.removeprefix("lottery/"): v for k, v in row.items() if k.startswith("lottery/")})
    return rounds


def offline_config(run_file: Path) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for record in read_records(run_file):
        kind = record.WhichOneof("record_type")
        # wandb.init(config=…) lands in the run record (recent wandb), later updates in config records
        updates = record.run.config.update if kind == "run" else record.config.update if kind == "config" else ()
        for item in updates:
            config[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
    return {k: v.get("value", v) if isinstance(v, dict) and set(v) <= {"value", "desc"} else v
            for k, v in config.items()}


def results_from_config_and_rounds(config: dict[str, Any], rounds: list[dict[str, Any]], run: str) -> dict[str, Any]:
    """A ``results.json``-shaped dict from a W&B run's config and per-round rows."""
    cfg = resolve({k: v for k, v in config.items() if not k.startswith("_")})
    ident = {**identity(cfg), "run": run}
    return {"finished": True, "run": run, "config": config, "environment": config.get("_environment"),
            "rounds": [{**ident, **r} for r in rounds]}


def results_from_offline(folders: list[Path]) -> list[dict[str, Any]]:
    """Results of every W&B run file (``offline-run-*/run-*.wandb``) under the folders."""
    out = {}
    for folder in folders:
        for run_file in sorted(Path(folder).rglob("run-*.wandb")):
            rounds = rounds_from_wandb(run_file)
            if rounds:
                config = offline_config(run_file)
                name = run_file.stem.removeprefix("run-")
                out[name] = results_from_config_and_rounds(config, rounds, name)
    return [out[k] for k in sorted(out)]


def results_from_api(path: str) -> list[dict[str, Any]]:
    """Results of every finished cell run in a W&B project (``entity/project``), through the public API."""
    import wandb

    out = []
    for run in wandb.Api().runs(path, filters={"jobType": "cell"}):
        keys = None  # every logged key; rounds are the rows with lottery/round
        rows = [r for r in run.scan_history(keys=keys) if r.get("lottery/round") is not None]
        rounds = [{k.removeprefix("lottery/"): v for k, v in r.items() if k.startswith("lottery/")} for r in rows]
        if rounds:
            out.append(results_from_config_and_rounds(dict(run.config), rounds, run.name))
    return out

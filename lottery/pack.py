"""Cells of one architecture trained together as stacked members of one network, in one process.

Small networks leave the hardware idle; K cells of a Sequential model (LeNet-300-100, LeNet-5, Conv-2/4/6,
VGG) that differ only in their start (``seed``, ``init.*``) become one stacked network
(``lottery.models.stacked``) trained by one Trainer. Member k sees the batches, w0, masks and optimizer
steps its cell sees alone, bit for bit on CPU (``exact``; batched kernels: within float tolerance, as on a
GPU), and each cell still gets its own run directory (``config.yaml``, ``rounds.csv``/``.json``,
``results.json``, W&B run with per-epoch curves) as if it had run by itself; the pack's own Lightning logs
and checkpoint live in ``<output_dir>/packs/<pack>/``.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from lottery import runner
from lottery.atomic import write_csv, write_json, write_text
from lottery.callbacks import LotteryTicket
from lottery.config import Config, ConfigError, to_dict, to_yaml
from lottery.data import DATASETS, DataMissingError
from lottery.init import initialize
from lottery.models import build
from lottery.models.stacked import stack

log = logging.getLogger("lottery")
FREE = ("seed", "init", "name", "output_dir", "wandb")  # what may differ between the members of one pack


def pack_key(cfg: Config) -> str:
    """Equal for cells that can be stacked together: everything but the start and the presentation."""
    data = {k: v for k, v in to_dict(cfg).items() if k not in FREE}
    data["prune"] = {k: v for k, v in data["prune"].items() if k != "masks_from"}  # one source per member
    return json.dumps(data, sort_keys=True, default=str)


def stackable(cfg: Config) -> bool:
    info = DATASETS[cfg.data.dataset]
    try:
        stack(build(cfg.model.name, info.shape, info.classes, **cfg.model.kwargs), 2)
    except ValueError:
        return False
    return cfg.prune.sleeping_check is None


def packs(cfgs: list[Config], members: int) -> list[list[int]]:
    """Indices of ``cfgs`` grouped into packs of at most ``members`` compatible cells, in grid order;
    cells whose model cannot be stacked (convolutions, norm layers) run alone."""
    groups: dict[str, list[int]] = {}
    out: list[list[int]] = []
    for i, cfg in enumerate(cfgs):
        if members <= 1 or not stackable(cfg):
            out.append([i])
            continue
        group = groups.setdefault(pack_key(cfg), [])
        if not group:
            out.append(group)
        group.append(i)
        if len(group) == members:
            del groups[pack_key(cfg)]
    return out


def member_epochs(logs: Path, member: int) -> list[dict[str, Any]]:
    """Member ``member``'s per-epoch metrics (``train_loss``, ``val_*``, ``test_*``) from the pack's CSV logs,
    keyed as an unstacked run logs them, in step order. A resumed pack writes a new ``version_*``; the
    latest write of a step wins, as the resumed run redid that epoch."""
    suffix, by_step = f"/m{member}", {}
    versions = sorted(logs.glob("version_*/metrics.csv"), key=lambda f: int(f.parent.name.split("_")[-1]))
    for f in versions:
        with f.open(newline="") as fh:
            for row in csv.DictReader(fh):
                values = {k[: -len(suffix)]: float(v) for k, v in row.items()
                          if v and k.endswith(suffix) and not k.startswith("lottery/")}
                if values:
                    by_step.setdefault(int(row["step"]), {"epoch": int(row["epoch"])}).update(values)
    return [{"step": step, **values} for step, values in sorted(by_step.items())]


def member_rounds(history: list[dict[str, Any]], member: int) -> list[dict[str, Any]]:
    """Member ``member``'s records, shaped as an unstacked run's."""
    return [{"round": r["round"], "epoch": r["epoch"], "step": r["step"], **r["members"][member]} for r in history]


class PackWriter(pl.Callback):
    """Rewrites every member cell's ``rounds.csv`` / ``rounds.json`` atomically after each round."""

    def __init__(self, cells: list[tuple[Path, dict[str, Any]]], lottery: LotteryTicket) -> None:
        self.cells, self.lottery, self.written = cells, lottery, -1

    def _write(self) -> None:
        if len(self.lottery.history) == self.written:
            return
        for m, (path, extra) in enumerate(self.cells):
            rows = [{**extra, **r} for r in member_rounds(self.lottery.history, m)]
            write_json(path / "rounds.json", rows)
            write_csv(path / "rounds.csv", rows)
        self.written = len(self.lottery.history)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._write()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._write()


def pack_dir(cfgs: list[Config], exact: bool = True) -> Path:
    names = "\n".join(c.run_name for c in cfgs) + ("" if exact else "\nbatched")  # never resume the other kind
    digest = hashlib.sha256(names.encode()).hexdigest()[:8]
    return Path(cfgs[0].output_dir) / "packs" / f"{cfgs[0].name}+{len(cfgs) - 1}-{digest}"


def run_pack(cfgs: list[Config], *, exact: bool = True, force: bool = False,
             callbacks: list[pl.Callback] = ()) -> list[dict[str, Any]]:  # type: ignore[assignment]
    """Run these cells as stacked members (resuming the pack's checkpoint, skipping finished cells);
    returns each cell's ``results.json`` contents, in order. ``exact``: members bit for bit as alone on CPU;
    False: one batched product per layer, faster, equal to the cells alone within float tolerance."""
    keys = {pack_key(c) for c in cfgs}
    if len(keys) > 1:
        raise ConfigError("a pack's cells must differ only in seed and init.*; these differ elsewhere too")
    todo = [c for c in cfgs if force or not runner.is_finished(runner.run_dir(c))]
    if len(todo) <= 1:
        return [runner.run(c, force=force, callbacks=list(callbacks)) for c in cfgs]
    first, k = todo[0], len(todo)
    path = pack_dir(todo, exact)
    threads = runner.configure_threads(first.train.threads)
    runner.skip_nvml_probe(first.train.accelerator)
    try:
        dm = runner.datamodule(first, seed=[c.seed for c in todo])
        dm.prepare()
        runner.check_output_dir(first)
        runner.check_trainer(first)
        runner.check_rewind_step(first, dm)
        info = DATASETS[first.data.dataset]
        net = initialize(stack(build(first.model.name, info.shape, info.classes, **first.model.kwargs), k, exact),
                         [c.init_spec() for c in todo])
        lottery = runner.lottery_callback(first, net, members=todo)
        module = runner.classifier(first, dm, net)
        lottery.validate(module)
    except (ValueError, DataMissingError) as e:
        raise ConfigError(str(e)) from None
    if force and path.exists():
        shutil.rmtree(path)
    cells = [(runner.run_dir(c), runner.identity(c)) for c in todo]
    for c, (cell_path, _) in zip(todo, cells, strict=True):
        if force and cell_path.exists():
            shutil.rmtree(cell_path)
        write_text(cell_path / "config.yaml", to_yaml(c))
    write_json(path / "pack.json", {"members": [c.run_name for c in todo], "exact": exact})
    resume = path / "checkpoints" / "last.ckpt"
    ckpt = runner.resume_from(path, first, threads, module)
    if first.train.checkpoint:
        runner.stamp_threads(path, threads)
    log.info(f"pack of {k} stacked {first.model.name}s ({'exact' if exact else 'batched'} kernels) on "
             f"{first.data.dataset}: "
             f"{', '.join(c.init_spec().label + ' seed ' + str(c.seed) for c in todo)}; {threads} threads"
             f"{', resuming from ' + str(resume) if ckpt else ''} → {path}")
    pl.seed_everything(first.seed, verbose=False)
    start = time.perf_counter()
    pack_cfg = copy.deepcopy(first)
    pack_cfg.wandb.enabled = False  # each cell gets its own W&B run once its records are known
    logger = runner.loggers(pack_cfg, path)
    fit_callbacks = [lottery, PackWriter(cells, lottery), *callbacks]
    runner.trainer(first, path, fit_callbacks, logger).fit(module, datamodule=dm, ckpt_path=ckpt)
    if not lottery.done:
        raise RuntimeError(f"training stopped before the last round ({len(lottery.history)} rounds done); "
                           f"rerun the same command to resume from {resume}")
    wall = time.perf_counter() - start
    finished = {}
    for m, (c, (cell_path, ident)) in enumerate(zip(todo, cells, strict=True)):
        rounds = [{**ident, **r} for r in member_rounds(lottery.history, m)]
        finished[c.run_name] = {
            "finished": True, "run": c.run_name, "config": to_dict(c), "identity": ident,
            "wall_seconds": wall / k,
            "pack": {"members": [t.run_name for t in todo], "exact": exact, "wall_seconds": wall},
            "rounds": rounds,
        }
        if c.wandb.enabled:
            _wandb_cell(c, cell_path, rounds, member_epochs(path / "logs", m))
        write_json(cell_path / "results.json", finished[c.run_name])
    if not first.train.keep_checkpoint:
        shutil.rmtree(path / "checkpoints", ignore_errors=True)
    log.info(f"pack finished in {wall:.0f} s: per-cell results in {', '.join(str(p) for p, _ in cells)}")
    return [finished.get(c.run_name) or json.loads((runner.run_dir(c) / "results.json").read_text()) for c in cfgs]


def _wandb_cell(cfg: Config, path: Path, rounds: list[dict[str, Any]], epochs: list[dict[str, Any]]) -> None:
    """The cell's own W&B run, as an unstacked run logs it: per-epoch training and evaluation metrics, then
    at each round's end its ``lottery/*`` metrics, and the sparsity–accuracy curves."""
    from lottery.tracking import log_curves, wandb_logger

    logger = wandb_logger(cfg, path, to_dict(cfg))
    per_round = [{f"lottery/{k}": v for k, v in r.items() if isinstance(v, (int, float))} for r in rounds]
    rows = [(e["step"], 0, {k: v for k, v in e.items() if k != "step"}) for e in epochs]
    rows += [(r["step"], 1, metrics) for r, metrics in zip(rounds, per_round, strict=True)]
    for step, _, metrics in sorted(rows, key=lambda row: row[:2]):
        logger.log_metrics(metrics, step=step)
    log_curves(logger, rounds)
    logger.experiment.finish()

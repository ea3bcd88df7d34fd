"""Run one lottery-ticket experiment from a validated ``Config``: the code behind ``lottery.train``.

A run lives in ``<output_dir>/<name>-<hash of non-default values>/``:
``config.yaml`` (resolved), ``rounds.csv`` / ``rounds.json`` (rewritten atomically after every round),
``results.json`` (written last; its presence means finished), ``logs/`` (Lightning CSV logger),
``checkpoints/last.ckpt`` (while running; an interrupted run resumes from it) and ``wandb/`` when enabled.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import io
import logging
import shutil
import time
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.trainer.states import TrainerStatus
from pytorch_lightning.utilities.exceptions import SIGTERMException
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from lottery.atomic import write_bytes, write_json, write_text
from lottery.build import (
    RoundWriter,
    build_classifier,
    build_datamodule,
    build_loggers,
    build_lottery_callback,
    build_trainer,
    configure_threads,
    curve_recorder,
    skip_nvml_probe,
    thread_count,
)
from lottery.callbacks import LotteryTicket
from lottery.checkpoints import resume_from, stamp_threads
from lottery.classifier import Classifier
from lottery.config import Config, ConfigError, to_dict, to_yaml
from lottery.data import DataMissingError, TensorDataModule
from lottery.dry_run import check_forward, check_rewind_step, check_trainer
from lottery.environment import environment, environment_id, environments_of
from lottery.errors import EXIT_SIGINT, EXIT_SIGTERM, Diverged, Interrupted
from lottery.pack import Pack, pack_key, wandb_cell
from lottery.preflight import check_config, check_output_dir, check_wandb
from lottery.results import identity
from lottery.rundir import diverged_message, outcome, read_results, run_dir, run_lock, write_results
from lottery.tracking import log_curves

log = logging.getLogger("lottery")
DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # what a write while training can hit: one line, not a trace


def run(cfg: Config, *, force: bool = False, callbacks: list[pl.Callback] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    """Run (or resume, or skip when finished) the experiment; returns the contents of ``results.json``.
    ``callbacks`` are added to the Trainer's (e.g. timers, extra metrics). Raises ``Diverged`` when its loss
    or weights went non-finite (now or in an earlier attempt)."""
    if not force and outcome(run_dir(cfg)) is not None:
        check_same_threads(cfg)  # a grid's cells keep their own counts, recorded per cell; one run is one answer
    result = run_cells([cfg], force=force, callbacks=callbacks)[0]
    if result.get("diverged"):
        raise Diverged(diverged_message(result))
    return result


def run_pack(cfgs: list[Config], *, exact: bool = True, force: bool = False,
             callbacks: list[pl.Callback] = ()) -> list[dict[str, Any]]:  # type: ignore[assignment]
    """Run these cells as stacked members (resuming the pack's checkpoint, skipping finished cells);
    returns each cell's ``results.json`` contents, in order."""
    if len({pack_key(c) for c in cfgs}) > 1:
        raise ConfigError("a pack's cells must differ only in seed and init.*; these differ elsewhere too")
    return run_cells(cfgs, exact=exact, force=force, callbacks=callbacks)


def run_cells(cfgs: list[Config], *, exact: bool = True, force: bool = False,
              callbacks: list[pl.Callback] = ()) -> list[dict[str, Any]]:  # type: ignore[assignment]
    """Run these cells, skipping finished ones; returns each cell's ``results.json`` contents, in order. The
    pending cells train as one ``Pack``: one cell alone, or several (differing only in start and
    ``prune.masks_from``) as stacked members of one network, each cell still getting its own run directory
    and records. ``exact``: members bit for bit as alone on CPU; False: one batched product per layer."""
    todo = [c for c in cfgs if force or outcome(run_dir(c)) is None]
    for c in cfgs:
        if c not in todo:
            log.info(f"{run_dir(c)} is {outcome(run_dir(c))} already; delete it or pass --force to run again")
    done: dict[str, dict[str, Any]] = {}
    while todo:  # members that diverged are recorded and dropped; the rest train again without them
        done.update(_train(Pack(todo, exact), force=force, callbacks=list(callbacks)))
        todo = [c for c in todo if c.run_name not in done]
    return [done.get(c.run_name) or read_results(run_dir(c), strict=True) for c in cfgs]


def check_same_threads(cfg: Config) -> None:
    """A finished run is the answer to its config only at its thread count (the run name leaves the count out,
    as it leaves out the machine): asking for another count is refused, not answered with the other numbers."""
    data = read_results(run_dir(cfg)) or {}
    recorded = (data.get("environment") or {}).get("threads") or data.get("config", {}).get("train", {}).get("threads")
    wanted = thread_count(cfg.train.threads)
    if isinstance(recorded, int) and recorded > 0 and recorded != wanted:
        raise ConfigError(f"train.threads: {run_dir(cfg)} was trained with {recorded} thread(s), and {wanted} give "
                          f"other numbers (float summation order); pass --force to train it again with {wanted}, "
                          "or another output_dir to keep both")


def _records(pack: Pack, lottery: LotteryTicket, index: int, **fields: Any) -> dict[str, Any]:
    """Cell ``index``'s ``results.json``: its identity on every round row, then ``fields``, and the
    environment(s) that trained it (several when a resume ran elsewhere)."""
    c = pack.cells[index]
    ident = identity(c)
    rounds = [{**ident, **r} for r in lottery.records(pack.member(index))]
    envs = environments_of(pack.folders[index])
    where = {"environment": envs[-1] if envs else None, **({"environments": envs} if len(envs) > 1 else {})}
    return {**fields, "run": c.run_name, "config": to_dict(c), "identity": ident, **where, "rounds": rounds}


def _record_divergence(pack: Pack, lottery: LotteryTicket, write: bool = True) -> dict[str, dict[str, Any]]:
    """Write ``results.json`` (``diverged``, not ``finished``) for each cell whose values went non-finite; the
    other members of a pack are left to train again. The pack's checkpoint stays: it is the last finite one
    (``AtomicCheckpointIO`` never writes a non-finite checkpoint), the last good weights."""
    info = lottery.diverged or {}
    bad = info["members"] if pack.stacked and info.get("members") else range(len(pack))
    out = {}
    for m in bad:
        c = pack.cells[m]
        # key order as before: finished, diverged, run, config, identity, rounds
        rec = _records(pack, lottery, m)
        out[c.run_name] = {"finished": False, "diverged": {**info, "members": None}, **rec}
        if write:
            write_results(pack.folders[m], out[c.run_name])
    return out


def _train(pack: Pack, *, force: bool, callbacks: list[pl.Callback]) -> dict[str, dict[str, Any]]:
    first = pack.first
    threads = configure_threads(first.train.threads)
    skip_nvml_probe(first.train.accelerator)
    try:  # every check that needs the data, the model or the callback, before anything is written
        for c in pack.cells:
            check_config(c)
        check_output_dir(first)
        check_wandb(first)
        check_trainer(first)
        net = pack.network()  # before the data: a bad model.name should not wait for a download
        lottery = build_lottery_callback(first, net, members=pack.cells if pack.stacked else None)  # mask sources
        dm = build_datamodule(first, seed=pack.batch_seeds())
        dm.prepare()
        check_forward(first, net, dm, len(pack))
        check_rewind_step(first, dm)
        module = build_classifier(first, dm, net)
        lottery.validate(module)
    except (ValueError, DataMissingError) as e:
        raise ConfigError(str(e)) from None
    zero = rank_zero_only.rank == 0  # under DDP every rank runs this; rank 0 holds the lock and writes
    with run_lock(pack.path) if zero else contextlib.nullcontext():
        try:
            return _fit(pack, threads, dm, lottery, module, force=force, callbacks=callbacks, zero=zero)
        except OSError as e:
            if e.errno not in DISK_FULL:
                raise
            raise ConfigError(f"output_dir: cannot write {e.filename or pack.path} ({e.strerror}); free some space "
                              "(or choose another output_dir) and rerun the same command to go on (from its last "
                              "checkpoint, if it keeps one); nothing it wrote is marked finished") from None


def _write_run_files(pack: Pack, threads: int, env: dict[str, Any], resumed: bool) -> None:
    """Each cell's ``config.yaml`` and ``environment.json`` (and a pack's ``pack.json``) before training; a disk
    that filled since the probe leaves no half-made run directory behind."""
    new = [folder for folder in dict.fromkeys([pack.path, *pack.folders]) if not folder.exists()]
    try:
        for c, folder in zip(pack.cells, pack.folders, strict=True):
            write_text(folder / "config.yaml", to_yaml(c))
            envs = environments_of(folder) if resumed else []
            if not envs or environment_id(envs[-1]) != environment_id(env):  # a resume elsewhere is recorded
                write_json(folder / "environment.json", [*envs, env])
        if pack.stacked:
            write_json(pack.path / "pack.json", {"members": [c.run_name for c in pack.cells], "exact": pack.exact})
        if pack.first.train.checkpoint:
            stamp_threads(pack.path, threads)
    except OSError as e:
        for folder in new:
            shutil.rmtree(folder, ignore_errors=True)
        raise ConfigError(f"output_dir: cannot write the run directory {pack.path} ({e.strerror or e}); free some "
                          "space (or choose another output_dir) and rerun") from None


def _fit(pack: Pack, threads: int, dm: TensorDataModule, lottery: LotteryTicket, module: Classifier, *,
         force: bool, callbacks: list[pl.Callback], zero: bool = True) -> dict[str, dict[str, Any]]:
    """Train checked cells in ``pack.path`` and write each cell's records (``zero``: this process is rank 0,
    the one that writes; the other ranks of a DDP run train alike and return the same records unwritten)."""
    first, path = pack.first, pack.path
    if force and zero:
        for folder in {path, *pack.folders}:
            shutil.rmtree(folder, ignore_errors=True)
    resume = path / "checkpoints" / "last.ckpt"
    ckpt = resume_from(path, first, threads, module, lottery)
    pl.seed_everything(first.seed, verbose=False)
    logged = first
    if pack.stacked:  # each cell gets its own W&B run once its records are known
        logged = copy.deepcopy(first)
        logged.wandb.enabled = False
    logger = build_loggers(logged, path)
    curve = curve_recorder(first, lottery)
    own = [curve] if curve is not None else []  # before the lottery: a round's last evaluation is its own
    cells = [(folder, identity(c)) for c, folder in zip(pack.cells, pack.folders, strict=True)]
    trainer = build_trainer(first, path, [*own, lottery, RoundWriter(cells, lottery), *callbacks], logger)
    # the environment once the Trainer has set its determinism flags; nothing is written before this
    if zero:
        _write_run_files(pack, threads, environment(trainer.strategy.root_device.type), resumed=ckpt is not None)
        resuming = f", resuming from {resume}" if ckpt else ""
        log.info(pack.describe(threads, resuming, {name: len(v[0]) for name, v in dm.tensors.items()}))
    start = time.perf_counter()
    try:
        trainer.fit(module, datamodule=dm, ckpt_path=ckpt)
    except SystemExit as e:  # Lightning ends a fit stopped by a signal with SystemExit (SIGTERM: code 0)
        if not isinstance(e, SIGTERMException) and trainer.state.status != TrainerStatus.INTERRUPTED:
            raise
        what, code = ("SIGTERM", EXIT_SIGTERM) if isinstance(e, SIGTERMException) else ("SIGINT", EXIT_SIGINT)
        kept = f"from {resume}" if first.train.checkpoint else "from the start (train.checkpoint is off)"
        raise Interrupted(f"{what} in round {len(lottery.history)} of {path}; nothing is marked finished. "
                          f"Rerun the same command to resume {kept}", code) from None
    if lottery.diverged is not None:
        return _record_divergence(pack, lottery, write=zero)
    if not lottery.done:
        raise RuntimeError(f"training stopped before the last round ({len(lottery.history)} rounds done); "
                           f"rerun the same command to resume from {resume}")
    wall = time.perf_counter() - start
    if zero and not pack.stacked:  # the last round's trained network, weights only (~1 MB for LeNet-300-100): what
        buf = io.BytesIO()  # export ships (a pack's members are not kept: export retrains from the ticket)
        torch.save({n: t.detach().cpu().clone() for n, t in module.model.state_dict().items()}, buf)
        write_bytes(path / "weights.pt", buf.getvalue())
    out = {}
    for m, (c, folder) in enumerate(zip(pack.cells, pack.folders, strict=True)):
        rec = _records(pack, lottery, m)
        out[c.run_name] = {"finished": True, **{k: v for k, v in rec.items() if k != "rounds"},
                           "wall_seconds": wall / len(pack), "rounds": rec["rounds"]}
        if curve is not None:
            out[c.run_name]["curve"] = curve.rows(pack.member(m))
        if pack.stacked:
            out[c.run_name]["pack"] = {"members": [t.run_name for t in pack.cells], "exact": pack.exact,
                                       "wall_seconds": wall}
        if not zero:
            continue
        if c.wandb.enabled:
            if pack.stacked:
                wandb_cell(c, folder, rec["rounds"], path / "logs", m, rec["environment"])
            else:  # the environment rides in the run's config ("_": not a config key), for --gather-wandb
                logger[-1].experiment.config.update({"_environment": rec["environment"]}, allow_val_change=True)
                log_curves(logger[-1], rec["rounds"])
                logger[-1].experiment.finish()
        write_results(folder, out[c.run_name])
    if zero and not first.train.keep_checkpoint:
        shutil.rmtree(path / "checkpoints", ignore_errors=True)
    where = ", ".join(str(p) for p in pack.folders) if pack.stacked else path / "rounds.csv"
    if zero:
        log.info(f"{'pack' if pack.stacked else 'run'} finished in {wall:.0f} s: per-round results in {where}")
    return out

"""Run one lottery-ticket experiment from a validated ``Config``: the code behind ``lottery.train``.

A run lives in ``<output_dir>/<name>-<hash of non-default values>/``:
``config.yaml`` (resolved), ``rounds.csv`` / ``rounds.json`` (rewritten atomically after every round),
``results.json`` (written last; its presence means finished), ``logs/`` (Lightning CSV logger),
``checkpoints/last.ckpt`` (while running; an interrupted run resumes from it) and ``wandb/`` when enabled.
"""

from __future__ import annotations

import copy
import fnmatch
import inspect
import io
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from lottery.atomic import write_bytes, write_csv, write_json, write_text
from lottery.callbacks import LotteryTicket
from lottery.classifier import Classifier
from lottery.config import Config, ConfigError, to_dict, to_yaml
from lottery.curves import EvalCurve
from lottery.data import DATASETS, DataMissingError, TensorDataModule
from lottery.errors import Diverged
from lottery.init import initialize
from lottery.models import build
from lottery.pack import pack_dir, pack_key, stacked_network, wandb_cell
from lottery.preflight import (
    check_forward,
    check_output_dir,
    check_rewind_step,
    check_trainer,
    check_wandb,
)
from lottery.results import identity
from lottery.rundir import diverged_message, outcome, read_results, run_dir, run_lock

log = logging.getLogger("lottery")


def configure_threads(threads: int) -> int:
    """0 means every core, unless ``$OMP_NUM_THREADS`` says otherwise (several processes on one machine
    must each take 1 thread: two 2-thread torch processes on 2 cores run 12–25× slower)."""
    if threads == 0:
        env = os.environ.get("OMP_NUM_THREADS", "")
        threads = int(env) if env.isdigit() and int(env) > 0 else (os.cpu_count() or 1)
    torch.set_num_threads(threads)
    return threads


def skip_nvml_probe(accelerator: str) -> None:
    """Lightning sets ``PYTORCH_NVML_BASED_CUDA_CHECK=1`` at import, which makes every ``Adam.step`` probe
    NVML through ctypes (``torch.cuda.is_available`` ≈ 0.07 ms, ≈ 5 % of a LeNet step on these CPUs). On a
    CPU run nothing forks with CUDA, so the plain CUDA-runtime check (≈ 1 µs) is safe."""
    if accelerator == "cpu":
        os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = "0"


def resume_from(path: Path, cfg: Config, threads: int, module: nn.Module, lottery: LotteryTicket) -> str | None:
    """The checkpoint to resume (None: start afresh), checked first: whole (content hash), loadable, written
    for this network, finite. A run's numbers depend on its thread count (float summation order), so a
    checkpoint written with another count is refused rather than silently mixed."""
    from lottery.checkpoints import verify

    resume, stamp = path / "checkpoints" / "last.ckpt", path / "checkpoints" / "threads"
    if not (cfg.train.checkpoint and resume.is_file()):
        return None
    ckpt = verify(resume, module)
    states = [v for k, v in (ckpt.get("callbacks") or {}).items() if str(k).startswith("LotteryTicket")]
    for state in states:
        try:
            lottery.check_state(state)
        except (ValueError, KeyError, TypeError) as e:
            raise ConfigError(f"checkpoint {resume} does not fit this run: {e}; delete it (or pass --force) to "
                              "start the run over") from None
    written = stamp.read_text().strip() if stamp.is_file() else str(threads)
    if written != str(threads):
        raise ConfigError(f"train.threads: {resume} was written with {written} threads; resuming with {threads} "
                          f"would change the run's numbers. Rerun with train.threads={written}, or --force to "
                          "start over")
    return str(resume)


def stamp_threads(path: Path, threads: int) -> None:
    write_text(path / "checkpoints" / "threads", f"{threads}\n")


def build_datamodule(cfg: Config, seed: int | list[int] | None = None) -> TensorDataModule:
    """``seed``: the batch-order seed(s); default the config's (a list: one per stacked member)."""
    d = cfg.data
    return TensorDataModule(
        d.dataset, root=d.root, batch_size=d.batch_size, eval_batch_size=d.eval_batch_size, val_size=d.val_size,
        split_seed=d.split_seed, seed=cfg.seed if seed is None else seed, augment=d.augment,
        train_subset=d.train_subset, test_subset=d.test_subset, download=d.download,
        steps_per_call=steps_per_call(cfg),
    )


def build_network(cfg: Config) -> nn.Module:
    info = DATASETS[cfg.data.dataset]
    net = build(cfg.model.name, info.shape, info.classes, **cfg.model.kwargs)
    initialize(net, cfg.init_spec())
    return net


def layer_rates(cfg: Config, net: nn.Module) -> dict[str, float]:
    """``conv_rate`` for every conv weight, then the explicit ``layer_rates`` globs (``model.`` prefix added)."""
    rates = {}
    if cfg.prune.conv_rate is not None:
        rates = {f"model.{n}.weight": cfg.prune.conv_rate for n, m in net.named_modules()
                 if isinstance(m, nn.Conv2d) or getattr(m, "convolution", False)}
    for pattern, rate in cfg.prune.layer_rates.items():
        full = pattern if pattern.startswith("model.") else f"model.{pattern}"
        if not any(fnmatch.fnmatchcase(f"model.{n}", full) for n, _ in net.named_parameters()):
            raise ValueError(f"prune.layer_rates: {pattern!r} matches no parameter of {cfg.model.name}")
        rates[full] = rate
    return rates


def build_lottery_callback(cfg: Config, net: nn.Module, members: list[Config] | None = None) -> LotteryTicket:
    """The IMP callback of ``cfg``; ``members``: the configs of stacked members (differing only in start and
    in ``prune.masks_from``). Every round's masks are kept in the run directory's ``masks/``."""
    p, cfgs = cfg.prune, members or [cfg]
    sources = [c.prune.masks_from for c in cfgs]
    if any(s is not None for s in sources) and None in sources:
        raise ValueError("prune.masks_from: set for some stacked members but not all")
    # every PruneConfig field the callback takes, by name (conv_rate reaches it through layer_rates)
    fields = {k: v for k, v in to_dict(p).items() if k in inspect.signature(LotteryTicket).parameters}
    return LotteryTicket(**{
        **fields,
        # init=None: θ0 comes from the spec attached to the network by ``model``, so parameters are named as
        # in the bare network ("0.weight") and ``initialize(net, spec)`` alone reproduces every w0.
        "init": None, "init_copy": not all(c.init_spec().regenerable for c in cfgs),
        "layer_rates": layer_rates(cfg, net),
        "prune_seed": [c.prune.prune_seed for c in members] if members else p.prune_seed,
        "masks_from": None if sources[0] is None else sources,
        "save_masks": [run_dir(c) / "masks" for c in cfgs],
    })


def build_classifier(cfg: Config, dm: TensorDataModule, net: nn.Module) -> Classifier:
    o = cfg.optim
    return Classifier(
        net, optimizer=o.name, lr=o.lr, momentum=o.momentum, nesterov=o.nesterov, weight_decay=o.weight_decay,
        milestones=o.milestones, gamma=o.gamma, warmup_steps=o.warmup_steps, fused=o.fused,
        eval_names=[n for n in ("val", "test") if n in dm.tensors], steps_per_epoch=len(dm.train_dataloader()),
    )


class RoundWriter(pl.Callback):
    """Rewrites every cell's ``rounds.csv`` / ``rounds.json`` atomically whenever the IMP callback finishes a
    round; ``cells``: (run directory, identity columns) per cell, one per stacked member."""

    def __init__(self, cells: list[tuple[Path, dict[str, Any]]], lottery: LotteryTicket) -> None:
        self.cells, self.lottery, self.written = cells, lottery, -1

    def _write(self) -> None:
        if len(self.lottery.history) == self.written:
            return
        for m, (path, extra) in enumerate(self.cells):
            rows = [{**extra, **r} for r in self.lottery.records(m if self.lottery.members else None)]
            write_json(path / "rounds.json", rows)
            write_csv(path / "rounds.csv", rows)
        self.written = len(self.lottery.history)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._write()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._write()


def build_loggers(cfg: Config, path: Path) -> list:
    from pytorch_lightning.loggers import CSVLogger

    out: list = [CSVLogger(save_dir=str(path), name="logs")]
    if cfg.wandb.enabled:
        from lottery.tracking import wandb_logger

        out.append(wandb_logger(cfg, path, to_dict(cfg)))
    return out


def build_trainer(cfg: Config, path: Path, callbacks: list[pl.Callback], logger: list) -> pl.Trainer:
    from pytorch_lightning.callbacks import ModelCheckpoint, TQDMProgressBar

    t = cfg.train
    if t.checkpoint:  # the latest epoch only, overwritten; at epoch ends even when evaluations count steps
        callbacks.append(ModelCheckpoint(dirpath=str(path / "checkpoints"), filename="last", save_top_k=1,
                                         enable_version_counter=False,
                                         save_on_train_epoch_end=True if t.eval_every_steps else None))
    if t.progress_bar:
        callbacks.append(TQDMProgressBar(refresh_rate=20))
    from lottery.checkpoints import AtomicCheckpointIO

    return pl.Trainer(
        plugins=[AtomicCheckpointIO()],
        max_epochs=-1, accelerator=t.accelerator, devices=t.devices, strategy=t.strategy, precision=t.precision,
        deterministic=t.deterministic, num_sanity_val_steps=0, **evaluation_schedule(cfg),
        callbacks=callbacks, logger=logger, enable_checkpointing=t.checkpoint, enable_progress_bar=t.progress_bar,
        enable_model_summary=t.progress_bar, default_root_dir=str(path),
    )


def curve_recorder(cfg: Config, lottery: LotteryTicket) -> EvalCurve | None:
    """With evaluations counted in steps: ~50 points per round (every 1,000 of F&C's 50,000 steps)."""
    every, per_round = cfg.train.eval_every_steps, cfg.prune.steps_per_round
    if every is None:
        return None
    return EvalCurve(lottery, every=every * max(1, (per_round or every) // 50 // every))


def evaluation_schedule(cfg: Config) -> dict[str, Any]:
    """Lightning's validation schedule: every ``eval_every`` epochs, or every ``eval_every_steps`` optimizer
    steps counted across epochs (``val_check_interval`` counts calls, which take ``steps_per_call`` steps)."""
    t = cfg.train
    if t.eval_every_steps is None:
        return {"check_val_every_n_epoch": t.eval_every}
    return {"check_val_every_n_epoch": None, "val_check_interval": t.eval_every_steps // steps_per_call(cfg)}


def steps_per_call(cfg: Config) -> int:
    # the rewind=step snapshot is taken after a call: one step per call makes it land on rewind_step exactly
    return 1 if cfg.prune.rewind == "step" else cfg.train.steps_per_call


def run(cfg: Config, *, force: bool = False, callbacks: list[pl.Callback] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    """Run (or resume, or skip when finished) the experiment; returns the contents of ``results.json``.
    ``callbacks`` are added to the Trainer's (e.g. timers, extra metrics). Raises ``Diverged`` when its loss
    or weights went non-finite (now or in an earlier attempt)."""
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
    """Run these cells, skipping finished ones; returns each cell's ``results.json`` contents, in order. One
    pending cell trains alone in its run directory; several (differing only in start and
    ``prune.masks_from``: ``lottery.pack``) train as stacked members of one network whose logs and
    checkpoint live in ``<output_dir>/packs/``, each cell still getting its own run directory and records.
    ``exact``: members bit for bit as alone on CPU; False: one batched product per layer."""
    todo = [c for c in cfgs if force or outcome(run_dir(c)) is None]
    for c in cfgs:
        if c not in todo:
            log.info(f"{run_dir(c)} is {outcome(run_dir(c))} already; delete it or pass --force to run again")
    done: dict[str, dict[str, Any]] = {}
    while todo:  # members that diverged are recorded and dropped; the rest train again without them
        done.update(_train(todo, exact=exact, force=force, callbacks=list(callbacks)))
        todo = [c for c in todo if c.run_name not in done]
    return [done.get(c.run_name) or read_results(run_dir(c), strict=True) for c in cfgs]


def _record_divergence(todo: list[Config], cells: list[tuple[Path, dict[str, Any]]], lottery: LotteryTicket,
                       path: Path) -> dict[str, dict[str, Any]]:
    """Write ``results.json`` (``diverged``, not ``finished``) for each cell whose values went non-finite and
    drop the pack's checkpoint (it holds them); the other members of a pack are left to train again."""
    info, k = lottery.diverged or {}, len(todo)
    bad = range(k) if k == 1 or not info.get("members") else info["members"]
    out = {}
    for m in bad:
        c, (cell_path, ident) = todo[m], cells[m]
        rounds = [{**ident, **r} for r in lottery.records(m if k > 1 else None)]
        out[c.run_name] = {"finished": False, "diverged": {**info, "members": None}, "run": c.run_name,
                           "config": to_dict(c), "identity": ident, "rounds": rounds}
        write_json(cell_path / "results.json", out[c.run_name])
    shutil.rmtree(path / "checkpoints", ignore_errors=True)
    return out


def _train(todo: list[Config], *, exact: bool, force: bool, callbacks: list[pl.Callback]) -> dict[str, dict[str, Any]]:
    first, k = todo[0], len(todo)
    path = pack_dir(todo, exact) if k > 1 else run_dir(first)
    threads = configure_threads(first.train.threads)
    skip_nvml_probe(first.train.accelerator)
    try:  # every check that needs the data, the model or the callback, before anything is written
        check_output_dir(first)
        check_wandb(first)
        check_trainer(first)
        net = stacked_network(todo, exact) if k > 1 else build_network(first)  # before the data: a bad model.name
        dm = build_datamodule(first, seed=[c.seed for c in todo] if k > 1 else None)  # should not wait for a download
        dm.prepare()
        check_forward(first, net, dm, k)
        check_rewind_step(first, dm)
        lottery = build_lottery_callback(first, net, members=todo if k > 1 else None)
        module = build_classifier(first, dm, net)
        lottery.validate(module)
    except (ValueError, DataMissingError) as e:
        raise ConfigError(str(e)) from None
    with run_lock(path):
        return _fit(todo, path, threads, dm, lottery, module, exact=exact, force=force, callbacks=callbacks)


def _fit(todo: list[Config], path: Path, threads: int, dm: TensorDataModule, lottery: LotteryTicket,
         module: Classifier, *, exact: bool, force: bool, callbacks: list[pl.Callback]) -> dict[str, dict[str, Any]]:
    """Train checked cells in ``path`` (their run directory, or their pack's) and write their records."""
    first, k = todo[0], len(todo)
    cells = [(run_dir(c), identity(c)) for c in todo]
    if force:
        for folder in {path, *(p for p, _ in cells)}:
            shutil.rmtree(folder, ignore_errors=True)
    resume = path / "checkpoints" / "last.ckpt"
    ckpt = resume_from(path, first, threads, module, lottery)
    new = [folder for folder in dict.fromkeys([path, *(p for p, _ in cells)]) if not folder.exists()]
    try:
        for c, (cell_path, _) in zip(todo, cells, strict=True):
            write_text(cell_path / "config.yaml", to_yaml(c))
        if k > 1:
            write_json(path / "pack.json", {"members": [c.run_name for c in todo], "exact": exact})
        if first.train.checkpoint:
            stamp_threads(path, threads)
    except OSError as e:  # a disk that filled since the probe: leave no half-made run directory behind
        for folder in new:
            shutil.rmtree(folder, ignore_errors=True)
        raise ConfigError(f"output_dir: cannot write the run directory {path} ({e.strerror or e}); free some space "
                          "(or choose another output_dir) and rerun") from None
    resuming = f", resuming from {resume}" if ckpt else ""
    if k > 1:
        log.info(f"pack of {k} stacked {first.model.name}s ({'exact' if exact else 'batched'} kernels) on "
                 f"{first.data.dataset}: {', '.join(c.init_spec().label + ' seed ' + str(c.seed) for c in todo)}; "
                 f"{threads} threads{resuming} → {path}")
    else:
        sizes = {name: len(v[0]) for name, v in dm.tensors.items()}
        log.info(f"{first.run_name}: {first.model.name} on {first.data.dataset} {sizes}, start "
                 f"{first.init_spec().label}, {threads} threads{resuming} → {path}")
    pl.seed_everything(first.seed, verbose=False)
    start = time.perf_counter()
    logged = first
    if k > 1:  # each cell gets its own W&B run once its records are known
        logged = copy.deepcopy(first)
        logged.wandb.enabled = False
    logger = build_loggers(logged, path)
    curve = curve_recorder(first, lottery)
    own = [curve] if curve is not None else []  # before the lottery: a round's last evaluation is its own
    build_trainer(first, path, [*own, lottery, RoundWriter(cells, lottery), *callbacks], logger).fit(
        module, datamodule=dm, ckpt_path=ckpt)
    if lottery.diverged is not None:
        return _record_divergence(todo, cells, lottery, path)
    if not lottery.done:
        raise RuntimeError(f"training stopped before the last round ({len(lottery.history)} rounds done); "
                           f"rerun the same command to resume from {resume}")
    wall = time.perf_counter() - start
    if k == 1:  # the last round's trained network, weights only (~1 MB for LeNet-300-100): what export ships
        buf = io.BytesIO()
        torch.save({n: t.detach().cpu().clone() for n, t in module.model.state_dict().items()}, buf)
        write_bytes(path / "weights.pt", buf.getvalue())
    out = {}
    for m, (c, (cell_path, ident)) in enumerate(zip(todo, cells, strict=True)):
        rounds = [{**ident, **r} for r in lottery.records(m if k > 1 else None)]
        out[c.run_name] = {"finished": True, "run": c.run_name, "config": to_dict(c), "identity": ident,
                           "wall_seconds": wall / k, "rounds": rounds}
        if curve is not None:
            out[c.run_name]["curve"] = curve.rows(m if k > 1 else None)
        if k > 1:
            out[c.run_name]["pack"] = {"members": [t.run_name for t in todo], "exact": exact, "wall_seconds": wall}
        if c.wandb.enabled:
            from lottery.tracking import log_curves

            if k > 1:
                wandb_cell(c, cell_path, rounds, path / "logs", m)
            else:
                log_curves(logger[-1], rounds)
                logger[-1].experiment.finish()
        write_json(cell_path / "results.json", out[c.run_name])
    if not first.train.keep_checkpoint:
        shutil.rmtree(path / "checkpoints", ignore_errors=True)
    if k > 1:
        log.info(f"pack finished in {wall:.0f} s: per-cell results in {', '.join(str(p) for p, _ in cells)}")
    else:
        log.info(f"finished: per-round results in {path / 'rounds.csv'}")
    return out

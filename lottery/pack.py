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

import csv
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from torch import nn

from lottery.config import Config, to_dict
from lottery.data import DATASETS
from lottery.init import initialize
from lottery.models import build
from lottery.models.stacked import stack
from lottery.rundir import run_dir
from lottery.tracking import log_curves, wandb_logger

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
    return cfg.prune.sleeping_check is None and cfg.prune.at_init is None  # PaI scores one network alone


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


def member_epochs(logs: Path, member: int | None) -> list[dict[str, Any]]:
    """Member ``member``'s per-epoch metrics (``train_loss``, ``val_*``, ``test_*``) from the pack's CSV logs,
    keyed as an unstacked run logs them, in step order; ``None``: an unstacked run's own. A resumed run writes
    a new ``version_*``; the latest write of a step wins, as the resumed run redid that epoch."""
    suffix, by_step = ("" if member is None else f"/m{member}"), {}
    versions = sorted(logs.glob("version_*/metrics.csv"), key=lambda f: int(f.parent.name.split("_")[-1]))
    for f in versions:
        with f.open(newline="") as fh:
            for row in csv.DictReader(fh):
                values = {k[: len(k) - len(suffix)]: float(v) for k, v in row.items()
                          if v and k.endswith(suffix) and not k.startswith("lottery/") and k not in ("epoch", "step")}
                if values:
                    by_step.setdefault(int(row["step"]), {"epoch": int(row["epoch"])}).update(values)
    return [{"step": step, **values} for step, values in sorted(by_step.items())]


def pack_dir(cfgs: list[Config], exact: bool = True) -> Path:
    names = "\n".join(c.run_name for c in cfgs) + ("" if exact else "\nbatched")  # never resume the other kind
    digest = hashlib.sha256(names.encode()).hexdigest()[:8]
    return Path(cfgs[0].output_dir) / "packs" / f"{cfgs[0].name}+{len(cfgs) - 1}-{digest}"


def build_network(cfg: Config) -> nn.Module:
    """The cell's network, initialised from its start (the spec stays attached: θ0 is regenerated from it)."""
    info = DATASETS[cfg.data.dataset]
    net = build(cfg.model.name, info.shape, info.classes, **cfg.model.kwargs)
    initialize(net, cfg.init_spec())
    return net


class Pack:
    """K ≥ 1 cells trained as one network: a cell alone (its own network, in its run directory) or K stacked
    members (one network, whose logs and checkpoint live in ``<output_dir>/packs/``). Either way every cell
    has its own run directory, records and ``results.json``; the difference lives here only."""

    def __init__(self, cells: list[Config], exact: bool = True) -> None:
        self.cells, self.exact, self.first = cells, exact, cells[0]
        self.stacked = len(cells) > 1
        self.path = pack_dir(cells, exact) if self.stacked else run_dir(self.first)
        self.folders = [run_dir(c) for c in cells]  # each cell's run directory

    def __len__(self) -> int:
        return len(self.cells)

    def network(self) -> nn.Module:
        return stacked_network(self.cells, self.exact) if self.stacked else build_network(self.first)

    def batch_seeds(self) -> int | list[int]:
        """The batch order's seed: the cell's, or one per member (each sees its cell's order)."""
        return [c.seed for c in self.cells] if self.stacked else self.first.seed

    def member(self, index: int) -> int | None:
        """The callback's and logger's name for cell ``index``: a member index, or None for a cell alone."""
        return index if self.stacked else None

    def describe(self, threads: int, resuming: str, sizes: dict[str, int]) -> str:
        f = self.first
        threads_text = f"{threads} thread{'s' if threads != 1 else ''}"
        if self.stacked:
            starts = ", ".join(c.init_spec().label + " seed " + str(c.seed) for c in self.cells)
            return (f"pack of {len(self)} stacked {f.model.name}s ({'exact' if self.exact else 'batched'} kernels) "
                    f"on {f.data.dataset}: {starts}; {threads_text}{resuming} → {self.path}")
        return (f"{f.run_name}: {f.model.name} on {f.data.dataset} {sizes}, start {f.init_spec().label}, "
                f"{threads_text}{resuming} → {self.path}")


def stacked_network(cfgs: list[Config], exact: bool = True) -> nn.Module:
    """The cells' network stacked ``len(cfgs)`` times, member k initialised from cell k's start."""
    first = cfgs[0]
    info = DATASETS[first.data.dataset]
    net = stack(build(first.model.name, info.shape, info.classes, **first.model.kwargs), len(cfgs), exact)
    return initialize(net, [c.init_spec() for c in cfgs])


def wandb_cell(cfg: Config, path: Path, rounds: list[dict[str, Any]], logs: Path, member: int,
               environment: dict[str, Any] | None = None) -> None:
    """The cell's own W&B run, as an unstacked run logs it: per-epoch training and evaluation metrics (from
    the pack's CSV ``logs``), then at each round's end its ``lottery/*`` metrics, and the sparsity–accuracy
    curves."""
    epochs = member_epochs(logs, member)
    logger = wandb_logger(cfg, path, {**to_dict(cfg), "_environment": environment})  # "_": not a config key
    per_round = [{f"lottery/{k}": v for k, v in r.items() if isinstance(v, (int, float))} for r in rounds]
    rows = [(e["step"], 0, {k: v for k, v in e.items() if k != "step"}) for e in epochs]
    rows += [(r["step"], 1, metrics) for r, metrics in zip(rounds, per_round, strict=True)]
    for step, _, metrics in sorted(rows, key=lambda row: row[:2]):
        logger.log_metrics(metrics, step=step)
    log_curves(logger, rounds)
    logger.experiment.finish()

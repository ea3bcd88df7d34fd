"""A stability study (Frankle et al. 2020) over seeds, subnetworks, sparsity levels and rewind steps.

    python -m lottery.stability_grid configs/stability_frankle2020.yaml [--workers 2]

The subnetworks are those a compare grid made: for each seed, its IMP cell (``ticket``) or a control trained on
that ticket's masks (``random_prune``, ``reinit``), at the grid's levels (level 0: the dense network). Each
(seed, subnetwork, level) network is the grid cell's own config (its w0, its recipe); for every rewind step k,
``lottery.stability`` trains two copies from step k on two batch orders and measures the error along the line
between them. Every finished (seed, subnetwork, level, k) is recorded at once as a small JSON under
``results_dir/cells`` and skipped on a rerun; the table (``stability.csv``) and figure (``stability.png``) are
rebuilt from the records. The masks come from the grid's run directories; a grid cell whose masks this machine
lacks (a record keeps none) is trained first, as the grid would (deterministic).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from lottery.atomic import write_csv, write_json  # noqa: E402
from lottery.build import configure_threads  # noqa: E402
from lottery.cells import Plan, phases  # noqa: E402
from lottery.config import Config, ConfigError, from_dict, read_yaml  # noqa: E402
from lottery.config.schema import opt  # noqa: E402
from lottery.console import run_cli, setup  # noqa: E402
from lottery.environment import environment, environment_id  # noqa: E402
from lottery.grid import Cell, GridConfig, load_grid  # noqa: E402
from lottery.launchers.local import cell_worker_init, run_local  # noqa: E402
from lottery.pruning.levels import count_levels  # noqa: E402
from lottery.results import environments, method  # noqa: E402
from lottery.rundir import run_dir  # noqa: E402
from lottery.stability import STABLE, copies, eval_data, instability, level_masks  # noqa: E402

COLUMNS = ("model", "dataset", "seed", "subnetwork", "level", "remaining_pct", "k", "instability", "error_a",
           "error_b", "stable", "train_steps", "environment")


@dataclass
class StabilityGrid:
    name: str = opt("stability", "the study's name")
    grid: str = opt("", "the compare grid whose cells give the networks and masks (path relative to this file)")
    start: int = opt(0, "the grid's start (index into its starts) whose IMP cells are the tickets")
    subnetworks: list[str] = opt(["ticket"], "ticket (the IMP cell) and controls of the grid trained on its masks")
    levels: list[int] = opt([0], "the grid's levels (rounds); 0: the dense network, once per seed")
    seeds: list[int] = opt([0], "seeds: each must be one of the grid's")
    steps: list[int] = opt([0], "rewind steps k")
    train_steps: int | None = opt(None, "optimizer steps each copy trains in all; null: one round of the grid's")
    orders: list[int] = opt([1, 2], "the two copies' batch-order seeds")
    points: int = opt(30, "points along the line, ends included (Frankle et al.: 30)")
    results_dir: str = opt("", "where the records, stability.csv and stability.png go (empty: runs/<name>)")


@dataclass
class Network:
    seed: int
    subnetwork: str  # "dense" for level 0
    level: int
    cell: Cell


def load_study(path: str | Path) -> tuple[StabilityGrid, GridConfig, list[Cell], list[Network]]:
    """The study and its networks, every field checked before anything trains (one line, ``ConfigError``)."""
    path = Path(path)
    study = from_dict(StabilityGrid, read_yaml(path), "stability.")
    if not study.grid:
        raise ConfigError("stability.grid: missing; name the compare grid whose cells give the masks")
    grid, cells = load_grid(path.parent / study.grid if not Path(study.grid).is_absolute() else study.grid)
    if not 0 <= study.start < len(grid.starts):
        raise ConfigError(f"stability.start: {study.start} is not valid; give 0 to {len(grid.starts) - 1}")
    rounds = cells[0].config.prune.rounds or 0
    for key, values, ok, what in (("levels", study.levels, lambda v: 0 <= v < rounds, f"0 to {rounds - 1}"),
                                  ("seeds", study.seeds, lambda v: v in grid.seeds, f"one of {grid.seeds}"),
                                  ("steps", study.steps, lambda v: v >= 0, "an integer ≥ 0"),
                                  ("subnetworks", study.subnetworks, lambda v: v == "ticket" or v in grid.controls,
                                   f"ticket or one of the grid's controls {grid.controls}")):
        if not values:
            raise ConfigError(f"stability.{key}: the axis is empty; give at least one")
        for i, v in enumerate(values):
            if not ok(v):
                raise ConfigError(f"stability.{key}[{i}]: {v!r} is not valid; give {what}")
    if len(study.orders) != 2 or study.orders[0] == study.orders[1] or study.points < 2:
        raise ConfigError(f"stability.orders / points: {study.orders} / {study.points}: give two different batch-order "
                          "seeds and at least 2 points")
    chosen = grid.starts[study.start]
    imp: dict[int, Cell] = {}
    for c in cells:  # the start's plain IMP cells, the first of its sources
        if c.source is None and method(c.config.prune) == "imp" and all(
                getattr(c.config.init, k) == v for k, v in chosen.items()):
            imp.setdefault(c.config.seed, c)
    networks = []
    for seed in study.seeds:
        ticket = imp[seed]
        networks += [Network(seed, "dense", 0, ticket)] if 0 in study.levels else []
        for sub, level in product(study.subnetworks, [v for v in study.levels if v]):
            cell = ticket if sub == "ticket" else next(c for c in cells if c.source == ticket.index
                                                       and c.config.prune.control == sub)
            networks.append(Network(seed, sub, level, cell))
    return study, grid, cells, networks


def measurements(path: str | Path) -> int:
    """How many (seed, network, k) the study at ``path`` measures in all: a page's total."""
    study, _, _, networks = load_study(path)
    return len(networks) * len(set(study.steps))


def folder(study: StabilityGrid) -> Path:
    return Path(study.results_dir or f"runs/{study.name}")


def record_path(study: StabilityGrid, net: Network, k: int) -> Path:
    return folder(study) / "cells" / f"{net.subnetwork}-l{net.level}-s{net.seed}-k{k}.json"


def measure(study: StabilityGrid, net: Network, ks: list[int]) -> list[dict[str, Any]]:
    """Each k of one network, every record written as it finishes."""
    cfg: Config = net.cell.config
    cfg.train.steps_per_call = 1  # masks after every step, and exactly k steps
    configure_threads(cfg.train.threads)
    masks = level_masks(str(run_dir(cfg)), net.level) if net.level else {}
    kept = sum(int(m.sum()) for m in masks.values()) / max(1, sum(m.numel() for m in masks.values()))
    test, round_steps = eval_data(cfg)
    total = study.train_steps or round_steps
    env = environment()  # whole in the record, as a run's results.json holds it; the table shows its id
    out = []
    for k in ks:
        value, errors = instability(*copies(cfg, k, total, tuple(study.orders), masks), study.points, test)
        rec = {"model": cfg.model.name, "dataset": cfg.data.dataset, "seed": net.seed, "subnetwork": net.subnetwork,
               "level": net.level,
               "remaining_pct": 100.0 * kept if masks else 100.0, "k": k, "instability": value,
               "error_a": errors[0], "error_b": errors[-1], "stable": value < STABLE, "train_steps": total,
               "errors": errors, "environment": env}
        write_json(record_path(study, net, k), rec)
        print(f"{net.subnetwork} level {net.level} seed {net.seed} · k = {k} · instability {100 * value:.2f} %",
              flush=True)
        out.append(rec)
    return out


def read_record(path: Path) -> dict[str, Any]:
    """A measurement's record, or ``ConfigError`` naming the file (a record may have been edited or damaged:
    it is read as data, and checked before anything trains)."""
    try:
        rec: Any = json.loads(path.read_text())
        why = "" if isinstance(rec, dict) else f"not a JSON record ({type(rec).__name__})"
    except (OSError, ValueError) as e:
        rec, why = None, f"not a JSON record ({type(e).__name__})"
    if not why and (missing := [c for c in COLUMNS if c not in rec]):
        why = f"it lacks {missing}"
    if why:
        raise ConfigError(f"{path}: {why}; move it away and rerun to measure it again")
    if not isinstance(rec["instability"], int | float) or not isinstance(rec["k"], int):
        raise ConfigError(f"{path}: instability {rec['instability']!r} / k {rec['k']!r} are not numbers; move it away "
                          "and rerun to measure it again")
    return rec


def todo(study: StabilityGrid, networks: list[Network]) -> list[tuple[Network, list[int]]]:
    """The networks with the steps still unrecorded (every recorded one read first: a bad one stops here)."""
    for path in sorted((folder(study) / "cells").glob("*.json")):
        read_record(path)
    left = []
    for net in networks:
        ks = [k for k in sorted(set(study.steps)) if not record_path(study, net, k).is_file()]
        if ks:
            left.append((net, ks))
    return left


def make_masks(grid: GridConfig, cells: list[Cell], left: list[tuple[Network, list[int]]], workers: int = 1) -> None:
    """Train the grid cells whose masks the networks still to measure need and this machine lacks (a recorded
    cell keeps no masks in its record): the tickets first, then the controls that read their masks, run by the
    grid's own launcher on ``workers`` processes and recorded as the grid records them. Deterministic: the masks
    the grid's own run made."""
    needed = {net.cell.index: net.cell for net, _ in left if net.level}
    needed |= {c.source: cells[c.source] for c in list(needed.values()) if c.source is not None}
    lacking = [c for _, c in sorted(needed.items()) if count_levels(run_dir(c.config)) < (c.config.prune.rounds or 0)]
    if not lacking:
        return
    print(f"training grid cell{'s' if len(lacking) > 1 else ''} {', '.join(str(c.index) for c in lacking)} "
          f"({lacking[0].label}{' …' if len(lacking) > 1 else ''}) for the masks", flush=True)
    run_local(grid, cells, Plan(len(cells), lacking, phases=phases(lacking)), workers)


def table(study: StabilityGrid) -> list[dict[str, Any]]:
    """Every record of the study, sorted; written as ``stability.csv`` with the figure beside it."""
    out = folder(study)
    records = [read_record(p) for p in sorted((out / "cells").glob("*.json"))]
    write_environments(out / "environments.json", records)
    rows = [{**r, "environment": env_id(r)} for r in records]
    rows.sort(key=lambda r: (r["subnetwork"] != "dense", r["subnetwork"], r["level"], r["seed"], r["k"]))
    write_csv(out / "stability.csv", rows, COLUMNS)
    fig, ax = plt.subplots(figsize=(6, 4))
    for (sub, _), group in _groups(rows).items():
        ks = sorted({r["k"] for r in group})
        means = [100 * np.mean([r["instability"] for r in group if r["k"] == k]) for k in ks]
        pct = group[0]["remaining_pct"]
        ax.plot([max(k, 1) for k in ks], means, marker="o", label=f"{sub} {pct:.1f} %")
    ax.axhline(100 * STABLE, ls="--", c="grey")
    ax.set(xscale="log", xlabel="rewind step k (0 plotted at 1)", ylabel="instability (%)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "stability.png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return rows


def env_id(record: dict[str, Any]) -> str:
    """A record's environment id: it holds the environment whole (or, recorded before 2026-12-07, its id)."""
    env = record.get("environment")
    return environment_id(env) if isinstance(env, dict) else str(env)


def write_environments(path: Path, records: list[dict[str, Any]]) -> None:
    """``environments.json`` beside the table, a grid's own format (``results.environments``): each id, how many
    measurements it made, the environment whole; records from before they held it name only the id, which the
    file's earlier entry still describes."""
    try:
        earlier = json.loads(path.read_text())
    except (OSError, ValueError):
        earlier = {}
    out = environments([r for r in records if isinstance(r.get("environment"), dict)])
    for r in records:
        if not isinstance(r.get("environment"), dict):
            entry = out.setdefault(str(r["environment"]), {"runs": 0})
            entry["runs"] += 1
            old = earlier.get(str(r["environment"])) if isinstance(earlier, dict) else None
            if isinstance(old, dict) and isinstance(old.get("environment"), dict):
                entry["environment"] = old["environment"]
    write_json(path, dict(sorted(out.items())))


def _groups(rows: list[dict[str, Any]]) -> dict[tuple[str, int], list[dict[str, Any]]]:
    out: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault((r["subnetwork"], r["level"]), []).append(r)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lottery.stability_grid", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("study")
    p.add_argument("--workers", type=int, default=1, help="processes of one thread each")
    p.add_argument("--table", action="store_true", help="only rebuild the table and figure from the records there "
                                                        "are (records gathered from other machines); no training")
    args = p.parse_args(argv)

    def body() -> int:
        setup()
        if args.workers < 1:
            raise ConfigError(f"--workers: {args.workers} is not valid; use an integer ≥ 1")
        study, grid, cells, networks = load_study(args.study)
        left = todo(study, networks)
        print(f"{study.name}: {len(networks)} networks × {len(set(study.steps))} steps; "
              f"{sum(len(ks) for _, ks in left)} left to measure")
        if args.table:
            left = []
        make_masks(grid, cells, left, args.workers)
        if args.workers == 1:
            for net, ks in left:
                measure(study, net, ks)
        else:
            for net, _ in left:
                net.cell.config.train.threads = 1
            with ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("spawn"),
                                     initializer=cell_worker_init) as pool:
                for future in [pool.submit(measure, study, net, ks) for net, ks in left]:
                    future.result()
        rows = table(study)
        print(f"wrote {len(rows)} rows to {folder(study) / 'stability.csv'}")
        return 0

    return run_cli(body)


if __name__ == "__main__":
    raise SystemExit(main())

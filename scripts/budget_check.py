"""Is a grid's per-level budget long enough? Retrain one level of finished cells for longer and compare.

    python scripts/budget_check.py configs/compare_frankle2021_conv.yaml --level 6 --epochs 24 \
        --methods imp snip grasp --seeds 0 1 2 --out results/frankle2021_conv/budget.csv

A grid whose rows are often still improving at a level's last epoch reports lower bounds; a reviewer asks
whether a gap between methods is the methods or the budget. For each chosen finished cell (IMP or a
pruning-at-initialisation method, not a control), the masks it trained at ``--level`` train once more from the
same w0 (``prune.masks_from``, one round) for ``--epochs`` epochs. From that one run: the test accuracy at the
minimum validation loss over the grid's budget (its first ``epochs_per_round`` epochs) and over all epochs, so
their difference is what the longer budget adds, paired, with the same masks, w0 and batch order. A row is
appended as each run finishes; recorded rows, and cells the grid has not finished, are skipped. Run it where
the grid's run directories are (it reads their masks); one thread, so it runs beside a grid.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from lottery.atomic import write_csv
from lottery.config import ConfigError, load
from lottery.console import run_cli, setup
from lottery.environment import environment_id, environments_of
from lottery.grid import load_grid
from lottery.pack import member_epochs
from lottery.pruning.levels import level_path
from lottery.results import method as method_of
from lottery.rundir import is_finished, run_dir
from lottery.runner import run

COLUMNS = ["method", "start", "seed", "level", "remaining_pct", "grid_acc", "epochs_within", "acc_within",
           "best_within", "epochs", "acc_all", "best_all", "gain_pp", "environment", "run"]


def at_best(metrics: pd.DataFrame, epochs: int) -> tuple[float, int]:
    """Test accuracy (%) at the first minimum of the validation loss over epochs 0 … epochs − 1, and that
    epoch (1-based, as ``epochs_to_best``)."""
    rows = metrics.dropna(subset=["val_loss", "test_acc"])
    rows = rows[rows["epoch"] < epochs].sort_values("epoch")
    if len(rows) < epochs:
        raise ValueError(f"{len(rows)} evaluated epochs below {epochs}: the run is incomplete")
    best = rows.loc[rows["val_loss"].idxmin()]
    return 100 * float(best["test_acc"]), int(best["epoch"]) + 1


def chosen_cells(config: str, methods: list[str], seeds: list[int]) -> list[tuple[str, Any]]:
    """(method, train config) of each finished-or-not IMP/PaI cell of the grid that the filters pick."""
    _, cells = load_grid(config)
    out = []
    for cell in cells:
        cfg = cell.config
        if cfg.prune.control or cfg.prune.masks_from:
            continue
        method = method_of(cfg.prune)
        if method in methods and cfg.seed in seeds:
            out.append((method, cfg))
    return out


def retrain(method: str, cfg: Any, level: int, epochs: int, work: Path) -> dict[str, Any]:
    source = run_dir(cfg)
    masks = level_path(source / "masks", level)
    grid_rows = source / "rounds.csv"
    if not masks.is_file() or not grid_rows.is_file():
        raise ConfigError(f"--level {level}: {source} has no {masks.name} or no rounds.csv; give a level the grid "
                          "trained (0 … prune.rounds − 1), and run this where the grid's run directories are")
    name = f"{source.name}-L{level}-e{epochs}"
    held = work / name / "source" / "masks"
    held.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(masks, level_path(held, 0))  # the level's masks as the one round to train
    again = load(source / "config.yaml", [f"prune.masks_from={held.parent}", "prune.rounds=1",
                                          f"prune.epochs_per_round={epochs}", "prune.at_init=null",
                                          f"output_dir={work}", f"name={name}", "train.progress_bar=false"])
    run(again)
    metrics = pd.DataFrame(member_epochs(run_dir(again) / "logs", None))
    within = cfg.prune.epochs_per_round
    acc_within, best_within = at_best(metrics, within)
    acc_all, best_all = at_best(metrics, epochs)
    row = pd.read_csv(grid_rows).set_index("round").loc[level]
    return {"method": method, "start": cfg.init_spec().label, "seed": cfg.seed, "level": level,
            "remaining_pct": round(float(row["remaining_pct"]), 4),
            "grid_acc": round(100 * float(row["at_best/test_acc"]), 2), "epochs_within": within,
            "acc_within": round(acc_within, 2), "best_within": best_within, "epochs": epochs,
            "acc_all": round(acc_all, 2), "best_all": best_all, "gain_pp": round(acc_all - acc_within, 2),
            "environment": "+".join(environment_id(e) for e in environments_of(run_dir(again))), "run": source.name}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", help="a compare grid config whose cells have run here")
    p.add_argument("--level", type=int, required=True, help="the pruning level (round) to retrain")
    p.add_argument("--epochs", type=int, required=True, help="epochs of the longer budget")
    p.add_argument("--methods", nargs="+", default=["imp"],
                   help="imp and/or prune.at_init names (snip-inverted: SNIP with its scores inverted)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0], help="the cells' seeds")
    p.add_argument("--out", required=True, help="CSV the rows are appended to")
    p.add_argument("--work", default="runs/budget_check", help="where the retrained runs go")
    args = p.parse_args(argv)
    setup()

    def body() -> int:
        out = Path(args.out)
        rows = pd.read_csv(out).to_dict("records") if out.is_file() else []
        done = {(r["run"], r["level"], r["epochs"]) for r in rows}
        chosen = chosen_cells(args.config, args.methods, args.seeds)
        if not chosen:
            raise ConfigError(f"--methods {' '.join(args.methods)} --seeds {' '.join(map(str, args.seeds))}: no cell "
                              f"of {args.config} has them; give methods (imp or prune.at_init names) and seeds it has")
        for method, cfg in chosen:
            if cfg.prune.epochs_per_round >= args.epochs:
                raise ConfigError(f"--epochs: {args.epochs} is not longer than the grid's epochs_per_round "
                                  f"({cfg.prune.epochs_per_round}); give more")
            if (run_dir(cfg).name, args.level, args.epochs) in done:
                continue
            if not is_finished(run_dir(cfg)):  # a grid still running: its cells are checked when they finish
                print(f"{method} seed {cfg.seed}: {run_dir(cfg)} has not finished; skipped (rerun this when it has)")
                continue
            row = retrain(method, cfg, args.level, args.epochs, Path(args.work))
            rows.append(row)
            write_csv(out, rows, COLUMNS)
            print(f"{method} seed {row['seed']} at {row['remaining_pct']:.1f} %: {row['acc_within']:.2f} % in "
                  f"{row['epochs_within']} epochs, {row['acc_all']:.2f} % in {args.epochs} (+{row['gain_pp']:.2f} pp)")
        return 0

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())

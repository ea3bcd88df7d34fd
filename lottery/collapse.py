"""Layer collapse of pruning at initialisation (Tanaka et al. 2020, SynFlow's point), past a grid's trained levels.

    python -m lottery.collapse configs/compare_frankle2021.yaml [--levels 30]

For every pruning-at-init cell of the grid (its method, scope, inversion, seed and w0), the masks of levels
1, 2, … of its own schedule (each tensor at (1 − its rate)^k, the pooled ones under one threshold, as the cell
prunes) are chosen afresh at the regenerated w0, without training, until a layer keeps no weight: the highest
density at which the method collapses; ``forced`` when fewer weights were kept than tensors had to share them
(a collapse no score could avoid). SNIP and GraSP score the first ``prune.at_init_batches`` training
batches of the cell's first epoch (a trained level scores its own epoch's). Writes ``collapse.csv`` beside the
grid's table, which the Frankle et al. (2021) page reads, and ``collapse.json`` (the grid, the levels, and the
environment whole, whose id each row names).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from lottery.atomic import write_csv, write_json
from lottery.build import build_datamodule
from lottery.callbacks.at_init import batches_of
from lottery.callbacks.select import output_tensor, rates_of, select_parameters
from lottery.config import ConfigError
from lottery.console import run_cli, setup
from lottery.data import DATASETS
from lottery.environment import environment, environment_id
from lottery.grid import Cell, load_grid
from lottery.init import initialize
from lottery.models import build
from lottery.pruning.at_init import collapsed, prune_at_init, state_at
from lottery.pruning.criteria import score_key
from lottery.report import table_folder
from lottery.results import method

COLUMNS = ("method", "seed", "level", "remaining_pct", "layers", "forced", "environment")


def first_collapse(cell: Cell, levels: int) -> dict[str, Any]:
    """The first level of ``cell``'s schedule at which its method leaves a layer empty (``level`` None: none
    up to ``levels``), and the % of the prunable weights that level keeps."""
    cfg, info = cell.config, DATASETS[cell.config.data.dataset]
    net = initialize(build(cfg.model.name, info.shape, info.classes, **cfg.model.kwargs), cfg.init_spec())
    names = select_parameters(net, None)
    rates, own = rates_of(net, names, output_tensor(net, names, None), cfg.prune)
    dm = build_datamodule(cfg)
    dm.setup("fit")
    batches = batches_of(dm.train_dataloader(), torch.device("cpu"), cfg.prune.at_init_batches)
    pooled = [n for n in names if cfg.prune.scope == "global" and n not in own]
    params = state_at(net)
    total = sum(params[n].numel() for n in names)
    for k in range(1, levels + 1):
        targets = {n: (1.0 - rates[n]) ** k for n in names}
        masks = prune_at_init(net, params, targets, str(cfg.prune.at_init), pooled, batches,
                              score_key(cfg.prune.prune_seed, "at-init", k, 0), cfg.prune.invert)
        cut = collapsed(masks)
        if cut:
            kept = sum(int(m.sum()) for m in masks.values())
            # forced: fewer weights kept than tensors, so some tensor had to end empty, whatever the scores
            forced = any(int(m.sum()) == 0 and round(targets[n] * m.numel()) == 0 for n, m in masks.items()) or (
                sum(int(masks[n].sum()) for n in pooled) < len(pooled))
            return {"method": method(cfg.prune), "seed": cfg.seed, "level": k, "remaining_pct": 100.0 * kept / total,
                    "layers": " ".join(cut), "forced": forced}
    return {"method": method(cfg.prune), "seed": cfg.seed, "level": None, "remaining_pct": None, "layers": "",
            "forced": None}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lottery.collapse", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("grid")
    p.add_argument("--levels", type=int, default=30, help="levels of the schedule to try (default 30)")
    p.add_argument("--out", help="the CSV to write (default: collapse.csv beside the grid's table)")
    args = p.parse_args(argv)

    def body() -> int:
        setup()
        if args.levels < 1:
            raise ConfigError(f"--levels: {args.levels} is not valid; use an integer ≥ 1")
        grid, cells = load_grid(args.grid)
        chosen = [c for c in cells if c.source is None and c.config.prune.at_init is not None]
        if not chosen:
            raise ConfigError(f"grid: {args.grid} has no pruning-at-init cell (grid.methods with at_init)")
        rows = []
        for cell in chosen:
            rows.append(first_collapse(cell, args.levels))
            r = rows[-1]
            print(f"{cell.label}: " + (f"collapses at level {r['level']} ({r['remaining_pct']:.4g} % remaining: "
                                       f"{r['layers']}{'; forced by the count' if r['forced'] else ''})"
                                       if r["level"] else f"no collapse in {args.levels} levels"))
        out = Path(args.out) if args.out else table_folder(grid) / "collapse.csv"
        env = environment()  # SNIP's and GraSP's scores are float sums: what made them is part of the record
        write_csv(out, [{**r, "environment": environment_id(env)} for r in rows], COLUMNS)
        write_json(out.with_suffix(".json"), {"grid": args.grid, "levels": args.levels, "environment": env})
        print(f"wrote {out}")
        return 0

    return run_cli(body)


if __name__ == "__main__":
    raise SystemExit(main())

"""Compare initialisation starts: a grid of ``lottery.train`` cells, run unattended, resumable.

    python -m lottery.compare configs/compare_quick.yaml

The grid is starts × sources × seeds × models on top of a train config (``base`` + ``overrides``). Each cell
is one ``lottery.train`` run in ``<output_dir>/cells/``: finished cells are skipped, an interrupted one resumes
from its checkpoint. Then ``results.csv`` (one row per cell and round), ``stats.csv`` / ``stats.md`` and the
figures are written to ``<output_dir>``. ``--launcher slurm`` submits the cells to a SLURM cluster instead
(``lottery.launchers.slurm``), ``--status`` shows every cell's state. ``--wandb-sweep`` exports the grid as a
W&B sweep; ``--cell K`` runs one cell (what a sweep agent calls); ``--gather DIR…`` rebuilds the table from run
directories.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

import yaml

from lottery.atomic import write_text
from lottery.cells import plan
from lottery.config import ConfigError
from lottery.console import run_cli, setup
from lottery.grid import Cell, GridConfig, load_grid
from lottery.launchers.local import run_local
from lottery.launchers.slurm import launch_slurm
from lottery.launchers.status import status_lines
from lottery.report import report, report_grid, table_folder
from lottery.results import finished_results
from lottery.tracking import results_from_api, results_from_offline, wandb_credentials

log = logging.getLogger("lottery")


def sweep_yaml(config_path: str, grid: GridConfig, cells: list[Cell]) -> str:
    """A W&B grid sweep over cell indices; each agent runs ``lottery.compare CONFIG --cell K``."""
    first = cells[0].config.wandb
    sweep = {
        "name": grid.name, "project": first.project, "method": "grid",
        "program": "lottery/compare.py",
        "command": ["${env}", "python", "-m", "lottery.compare", config_path, "${args}"],
        "parameters": {"cell": {"values": [c.index for c in cells]}},
        "description": "; ".join(f"{c.index}: {c.label}" for c in cells),
    }
    if first.entity:
        sweep["entity"] = first.entity
    return yaml.safe_dump(sweep, sort_keys=False)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lottery.compare", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", help="grid YAML (see configs/compare_*.yaml)")
    p.add_argument("overrides", nargs="*", help="grid overrides, e.g. seeds=[0,1] overrides.prune.rounds=3")
    p.add_argument("--list", action="store_true", help="list the cells and exit")
    p.add_argument("--cell", type=int, help="run only this cell (what a W&B sweep agent calls)")
    p.add_argument("--wandb-sweep", nargs="?", const="", metavar="PATH", help="write the W&B sweep YAML and exit")
    p.add_argument("--gather", nargs="+", metavar="DIR", help="rebuild the table from run directories; no training")
    p.add_argument("--gather-wandb", nargs="+", metavar="DIR_OR_PROJECT",
                   help="rebuild the table from W&B runs: folders holding run files (offline-run-*/run-*.wandb, "
                        "e.g. synced from other machines) or an entity/project on a W&B server")
    p.add_argument("--no-plots", action="store_true", help="skip the figures")
    p.add_argument("--workers", type=int, default=1,
                   help="cells run in parallel processes of one thread each (pays on many-core machines)")
    p.add_argument("--launcher", choices=("local", "slurm"),
                   help="where the cells run (the grid's launcher.name): local, or slurm (job arrays through "
                        "submitit; options as launcher.* overrides, e.g. launcher.partition=gpu)")
    p.add_argument("--status", action="store_true",
                   help="show every cell: recorded, finished, running or queued (job id), failed (log), diverged")
    args = p.parse_intermixed_args(argv)  # overrides may come after the options
    setup()
    return run_cli(lambda: _body(args))


def _body(args: argparse.Namespace) -> int:
    overrides = [*args.overrides, *([f"launcher.name={args.launcher}"] if args.launcher else [])]
    grid, cells = load_grid(args.config, overrides)
    if args.status:
        print("\n".join(status_lines(grid, cells)))
    elif args.list:
        print("\n".join(f"{c.index}\t{c.label}\t{c.config.run_name}" for c in cells))
    elif args.wandb_sweep is not None:
        export_sweep(args.config, args.wandb_sweep, grid, cells)
    elif args.gather or args.gather_wandb:
        report(table_folder(grid), gather(args.gather or [], args.gather_wandb or []), plots=not args.no_plots)
    else:
        run_and_report(grid, cells, only=args.cell, workers=args.workers, plots=not args.no_plots,
                       config=args.config, overrides=overrides)
    return 0


def export_sweep(config: str, target: str, grid: GridConfig, cells: list[Cell]) -> None:
    path = Path(target or Path(grid.output_dir) / "sweep.yaml")
    try:
        write_text(path, sweep_yaml(config, grid, cells))
    except OSError as e:
        raise ConfigError(f"--wandb-sweep: cannot write {path} ({e.strerror or e}); give a writable path") from None
    print(f"wrote {path}: run `wandb sweep {path}`, then `wandb agent <sweep id>` on each machine")


def gather(folders: list[str], wandb_sources: list[str]) -> list[dict[str, Any]]:
    """Finished results from run directories and W&B runs (folders of run files or entity/project); never
    trains."""
    results = finished_results(Path(d) for d in folders)
    online = [src for src in wandb_sources if not Path(src).is_dir()]
    if online and not wandb_credentials():
        raise ConfigError(f"--gather-wandb: {online[0]!r} is a W&B project (not a folder here), and reading it needs "
                          "a W&B API key (WANDB_API_KEY or `wandb login`); or give the folder of offline runs")
    if wandb_sources:

        results += [r for src in wandb_sources for r in
                    (results_from_offline([Path(src)]) if Path(src).is_dir() else results_from_api(src))]
    if not results:
        raise ConfigError(f"--gather: no finished run under {', '.join([*folders, *wandb_sources])}")
    return results


def run_and_report(grid: GridConfig, cells: list[Cell], *, only: int | None, workers: int, plots: bool,
                   config: str = "", overrides: list[str] = ()) -> None:  # type: ignore[assignment]
    """Run (or submit) what the grid has left with its launcher, then the table of a local run."""
    if only is not None and not 0 <= only < len(cells):
        raise ConfigError(f"--cell: {only} is not valid; the grid has cells 0..{len(cells) - 1}")
    if workers < 1:
        raise ConfigError(f"--workers: {workers} is not valid; use an integer ≥ 1")
    todo = plan(grid, cells, only)
    if grid.launcher.name == "slurm" and only is None:
        launch_slurm(grid, cells, todo, str(Path(config).resolve()), list(overrides), plots=plots)
        return
    results = run_local(grid, cells, todo, workers)
    if only is None:
        report_grid(grid, cells[0].config.wandb, results, plots=plots)


if __name__ == "__main__":
    sys.exit(main())

"""A grid's table, statistics, figures and W&B summary from its settled cells: what ``lottery.compare``
writes after a local grid, and what the gather job of a cluster grid writes once its cells have ended."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from lottery.atomic import write_csv, write_json
from lottery.config.schema import WandbConfig
from lottery.grid import GridConfig
from lottery.plot import iterations, plot_all
from lottery.results import environments, rows_of, write_table
from lottery.stats import curves, write_stats
from lottery.tracking import summary_run

log = logging.getLogger("lottery")


def table_folder(grid: GridConfig) -> Path:
    return Path(grid.results_dir or grid.output_dir)


def report(out: Path, results: list[dict[str, Any]], *, plots: bool = True) -> Path:
    """The tidy table, the statistics and the figures of a set of finished runs."""
    diverged = [res for res in results if res.get("diverged")]
    if diverged:  # a diverged cell has no results: listed apart, never averaged in
        write_csv(out / "diverged.csv", [{"run": r["run"], **r["diverged"]} for r in diverged])
        log.warning(f"{len(diverged)} cells diverged and are left out of the table: see {out / 'diverged.csv'}")
    finished = [res for res in results if not res.get("diverged")]
    rows = [r for res in finished for r in rows_of(res)]
    table = out / "results.csv"
    write_table(table, rows)
    write_json(out / "environments.json", environments(finished))
    write_stats(table, out)
    if plots:
        plot_all(table, out)
        iterations(finished, out)
    log.info(f"table {table} · statistics {out / 'stats.md'} · figures {out}/*.png|svg")
    return table


def report_grid(grid: GridConfig, first_wandb: WandbConfig, results: list[dict[str, Any]], *,
                plots: bool = True) -> Path:
    """``report`` into the grid's table folder, then (with W&B on) the ``<grid>-summary`` run of mean curves,
    in the grid's W&B group."""
    table = report(table_folder(grid), results, plots=plots)
    if first_wandb.enabled:
        summary_run(grid.name, first_wandb.project, first_wandb.entity, first_wandb.tags, curves(table),
                    Path(grid.output_dir))
    return table

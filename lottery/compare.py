"""Compare initialisation starts: a grid of ``lottery.train`` cells, run unattended, resumable.

    python -m lottery.compare configs/compare_quick.yaml

The grid is starts × sources × seeds × models on top of a train config (``base`` + ``overrides``). Each cell
is one ``lottery.train`` run in ``<output_dir>/cells/``: finished cells are skipped, an interrupted one resumes
from its checkpoint. Then ``results.csv`` (one row per cell and round), ``stats.csv`` / ``stats.md`` and the
figures are written to ``<output_dir>``. ``--wandb-sweep`` exports the grid as a W&B sweep instead; ``--cell K``
runs one cell (what a sweep agent calls); ``--gather DIR…`` rebuilds the table from run directories.
"""

from __future__ import annotations

import argparse
import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import torch
import yaml

from lottery.atomic import write_csv, write_json, write_text
from lottery.config import Config, ConfigError
from lottery.console import run_cli, setup
from lottery.grid import Cell, GridConfig, load_grid, record_path, recorded
from lottery.pack import packs
from lottery.plot import iterations, plot_all
from lottery.pruning.levels import count_levels
from lottery.results import environments, finished_results, rows_of, write_table
from lottery.rundir import diverged_message, is_finished, run_dir, write_results
from lottery.runner import run_pack
from lottery.stats import curves, write_stats
from lottery.tracking import results_from_api, results_from_offline, summary_run, wandb_credentials

log = logging.getLogger("lottery")
def _die_with_parent() -> None:
    """Linux: the kernel stops this worker when the grid's process dies (killed, or its terminal closed),
    instead of leaving it training orphaned; its pack resumes from the last checkpoint on the next run."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass


def _cell_worker_init() -> None:
    _die_with_parent()
    torch.set_num_threads(1)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")


def _run_pack(cfgs: list[Config], exact: bool) -> list[dict[str, Any]]:
    return run_pack(cfgs, exact=exact)


def run_grid(grid: GridConfig, cells: list[Cell], *, only: int | None = None, workers: int = 1) -> list[dict[str, Any]]:
    """Run (or skip, or resume) the cells, in order or in ``workers`` processes of one thread each (two
    2-thread torch processes on 2 cores collapse 12–25×); returns their results in cell order. With
    ``members_per_process`` > 1, compatible cells are trained together as stacked members (``lottery.pack``).
    Cells recorded in ``results_dir`` are skipped; each newly finished cell's record is written there at
    once. IMP cells run before the controls that train with their masks (an IMP cell whose record is
    committed but whose masks are not on this machine runs again: it is deterministic)."""
    chosen = cells if only is None else [cells[only]]
    total = len(cells)
    out = {c.index: r for c in chosen if (r := recorded(grid, c)) is not None}
    for c in chosen:
        if c.index in out:
            log.info(f"cell {c.index + 1}/{total} · {c.label} · recorded in {record_path(grid, c).parent}, skipped")
    todo = [c for c in chosen if c.index not in out]
    sources = {c.source for c in todo if c.source is not None}
    for i in sorted(sources):
        imp = cells[i]
        if count_levels(run_dir(imp.config)) < (imp.config.prune.rounds or 0):
            if only is not None:
                raise ConfigError(f"--cell {only}: the masks of cell {i} ({imp.label}) are not in "
                                  f"{run_dir(imp.config)}; run --cell {i} first")
            if i not in {c.index for c in todo}:
                log.info(f"cell {i + 1}/{total} · {imp.label} · runs again: its controls need its masks")
                todo.append(imp)
    for phase in ([c for c in todo if c.source is None], [c for c in todo if c.source is not None]):
        phase.sort(key=lambda c: c.index)
        for cell in [c for c in phase if c.source is not None and out.get(c.source, {}).get("diverged")]:
            phase.remove(cell)  # its ticket has no masks to train with: it shares the ticket's fate
            out[cell.index] = {"finished": False, "run": cell.config.run_name, "rounds": [],
                               "diverged": {**out[cell.source]["diverged"],
                                            "what": f"its ticket {cells[cell.source].label} diverged"}}
        results = _run_cells(grid, phase, total, workers)
        for cell in phase:
            out[cell.index] = results[cell.index]
    return [out[c.index] for c in chosen]


def _keep_record(grid: GridConfig, cell: Cell, result: dict[str, Any]) -> None:
    if grid.results_dir:
        write_results(record_path(grid, cell).parent, result)


def _run_cells(grid: GridConfig, chosen: list[Cell], total: int, workers: int) -> dict[int, dict[str, Any]]:
    groups = [[chosen[i] for i in g] for g in packs([c.config for c in chosen], grid.members_per_process)]

    def done(cell: Cell, result: dict[str, Any], state: str) -> None:
        _keep_record(grid, cell, result)
        if result.get("diverged"):
            log.info(f"cell {cell.index + 1}/{total} · {cell.label} · DIVERGED · {diverged_message(result)}")
            return
        last = result["rounds"][-1]
        log.info(f"cell {cell.index + 1}/{total} · {cell.label} · {state} · {last['remaining_pct']:.1f} % remaining"
                 f" · test {100 * last.get('test_acc', float('nan')):.2f} %")

    results: dict[int, dict[str, Any]] = {}
    if workers > 1:
        for cell in chosen:  # one thread per process; the hash of a run does not depend on it
            cell.config.train.threads = 1
        saved = {var: os.environ.get(var) for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
        os.environ.update(dict.fromkeys(saved, "1"))  # read by the workers' OpenMP/MKL at start-up
        started = time.perf_counter()
        try:
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                     initializer=_cell_worker_init) as pool:
                futures = {pool.submit(_run_pack, [c.config for c in g], grid.members_exact): g for g in groups}
                for future in as_completed(futures):
                    for cell, result in zip(futures[future], future.result(), strict=True):
                        results[cell.index] = result
                        done(cell, result, f"{time.perf_counter() - started:.0f} s into the grid")
        finally:
            for var, value in saved.items():
                if value is None:
                    os.environ.pop(var, None)
                else:
                    os.environ[var] = value
        return results
    for group in groups:
        finished = [is_finished(run_dir(c.config)) for c in group]
        start = time.perf_counter()
        pending = [c for c, f in zip(group, finished, strict=True) if not f]
        todo = [c.index + 1 for c in pending]
        if len(todo) == 1:
            log.info(f"cell {todo[0]}/{total} · {pending[0].label} · starting")
        elif todo:
            log.info(f"cells {', '.join(map(str, todo)) if len(todo) < 4 else f'{todo[0]}…{todo[-1]}'} of {total} · "
                     f"{len(todo)} stacked members · starting")
        packed = _run_pack([c.config for c in group], grid.members_exact)
        for cell, result, f in zip(group, packed, finished, strict=True):
            results[cell.index] = result
            done(cell, result, "finished already, skipped" if f else f"done in {time.perf_counter() - start:.0f} s")
    return results


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
        iterations([res for res in results if not res.get("diverged")], out)
    log.info(f"table {table} · statistics {out / 'stats.md'} · figures {out}/*.png|svg")
    return table


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
    args = p.parse_intermixed_args(argv)  # overrides may come after the options
    setup()
    return run_cli(lambda: _body(args))


def _body(args: argparse.Namespace) -> int:
    grid, cells = load_grid(args.config, args.overrides)
    if args.list:
        print("\n".join(f"{c.index}\t{c.label}\t{c.config.run_name}" for c in cells))
    elif args.wandb_sweep is not None:
        export_sweep(args.config, args.wandb_sweep, grid, cells)
    elif args.gather or args.gather_wandb:
        report(table_folder(grid), gather(args.gather or [], args.gather_wandb or []), plots=not args.no_plots)
    else:
        run_and_report(grid, cells, only=args.cell, workers=args.workers, plots=not args.no_plots)
    return 0


def table_folder(grid: GridConfig) -> Path:
    return Path(grid.results_dir or grid.output_dir)


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


def run_and_report(grid: GridConfig, cells: list[Cell], *, only: int | None, workers: int, plots: bool) -> None:
    if only is not None and not 0 <= only < len(cells):
        raise ConfigError(f"--cell: {only} is not valid; the grid has cells 0..{len(cells) - 1}")
    if workers < 1:
        raise ConfigError(f"--workers: {workers} is not valid; use an integer ≥ 1")
    results = run_grid(grid, cells, only=only, workers=workers)
    if only is not None:
        return
    report(table_folder(grid), results, plots=plots)
    if cells[0].config.wandb.enabled:

        w = cells[0].config.wandb
        summary_run(grid.name, w.project, w.entity, w.tags, curves(table_folder(grid) / "results.csv"),
                    Path(grid.output_dir))


if __name__ == "__main__":
    sys.exit(main())

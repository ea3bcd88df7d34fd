"""The local launcher: a grid's packs in this process, or in ``--workers`` processes of one thread each."""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

import torch

from lottery.cells import Plan, keep, run_group, ticket_outcome
from lottery.console import setup
from lottery.grid import Cell, GridConfig
from lottery.pack import packs
from lottery.rundir import is_finished, run_dir

log = logging.getLogger("lottery")


def _die_with_parent() -> None:
    """Linux: the kernel stops this worker when the grid's process dies (killed, or its terminal closed),
    instead of leaving it training orphaned; its pack resumes from the last checkpoint on the next run."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass


def cell_worker_init() -> None:
    _die_with_parent()
    torch.set_num_threads(1)
    setup()  # the same log format and warning filters as the parent (a spawned worker starts without them)


def run_local(grid: GridConfig, cells: list[Cell], plan: Plan, workers: int = 1) -> list[dict[str, Any]]:
    """Run the plan's phases here (IMP cells, then the controls on their masks) and return every chosen cell's
    result in cell order; a control whose ticket diverged shares its fate without running."""
    out = dict(plan.done)
    for phase in plan.phases:
        phase = list(phase)
        for cell in list(phase):
            settled = ticket_outcome(grid, cells, cell, out)
            if settled is not None:
                phase.remove(cell)
                out[cell.index] = settled
        out.update(_run_phase(grid, phase, plan.total, workers))
    return [out[c.index] for c in plan.chosen]


def _run_phase(grid: GridConfig, chosen: list[Cell], total: int, workers: int) -> dict[int, dict[str, Any]]:
    groups = [[chosen[i] for i in g] for g in packs([c.config for c in chosen], grid.members_per_process)]
    results: dict[int, dict[str, Any]] = {}
    if workers > 1:
        for cell in chosen:  # one thread per process; the hash of a run does not depend on it
            cell.config.train.threads = 1
        saved = {var: os.environ.get(var) for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
        os.environ.update(dict.fromkeys(saved, "1"))  # read by the workers' OpenMP/MKL at start-up
        started = time.perf_counter()
        try:
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                     initializer=cell_worker_init) as pool:
                futures = {pool.submit(run_group, grid, g): g for g in groups}
                for future in as_completed(futures):
                    for cell, result in zip(futures[future], future.result(), strict=True):
                        results[cell.index] = result
                        keep(grid, cell, result, total, f"{time.perf_counter() - started:.0f} s into the grid")
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
        for cell, result, f in zip(group, run_group(grid, group), finished, strict=True):
            results[cell.index] = result
            keep(grid, cell, result, total, "finished already, skipped" if f else
                 f"done in {time.perf_counter() - start:.0f} s")
    return results

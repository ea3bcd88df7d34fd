"""The local launcher: a grid's packs in this process, or in ``--workers`` processes of one thread each."""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
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
    """Run the plan here and return every chosen cell's result in cell order. A ticket's controls run as soon
    as its masks exist, ahead of the IMP cells still waiting, so a sitting that ends early leaves few tickets
    whose controls still need their masks (a new machine would have to train them again); a control whose
    ticket diverged shares its fate without running."""
    out = dict(plan.done)
    imp, controls = ([[phase[i] for i in g] for g in packs([c.config for c in phase], grid.members_per_process)]
                     for phase in plan.phases)
    waiting = {c.index for c in plan.phases[0]}  # IMP cells still to run: their masks are not made yet

    def next_group() -> list[Cell] | None:
        for group in list(controls):
            if not {c.source for c in group} & waiting:
                controls.remove(group)
                ready = [c for c in group if not _settle(grid, cells, c, out)]
                if ready:
                    return ready
        return imp.pop(0) if imp else None

    def settle(group: list[Cell], results: list[dict[str, Any]], state: str) -> None:
        for cell, result in zip(group, results, strict=True):
            out[cell.index] = result
            waiting.discard(cell.index)
            keep(grid, cell, result, plan.total, state)

    if workers > 1:
        _run_pool(grid, plan.total, [c for phase in plan.phases for c in phase], workers, next_group, settle)
    else:
        while (group := next_group()) is not None:
            _run_here(grid, group, plan.total, settle)
    return [out[c.index] for c in plan.chosen]


def _settle(grid: GridConfig, cells: list[Cell], cell: Cell, out: dict[int, dict[str, Any]]) -> bool:
    """True (and its result in ``out``) when a control's ticket diverged: it shares the ticket's fate."""
    settled = ticket_outcome(grid, cells, cell, out)
    if settled is not None:
        out[cell.index] = settled
    return settled is not None


def _run_pool(grid: GridConfig, total: int, chosen: list[Cell], workers: int,
              next_group: Callable[[], list[Cell] | None],
              settle: Callable[[list[Cell], list[dict[str, Any]], str], None]) -> None:
    for cell in chosen:  # one thread per process; the hash of a run does not depend on it
        cell.config.train.threads = 1
    saved = {var: os.environ.get(var) for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    os.environ.update(dict.fromkeys(saved, "1"))  # read by the workers' OpenMP/MKL at start-up
    started = time.perf_counter()
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=cell_worker_init) as pool:
            running: dict[Future, list[Cell]] = {}
            while True:
                while len(running) < workers and (group := next_group()) is not None:
                    running[pool.submit(run_group, grid, group)] = group
                if not running:
                    return
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    settle(running.pop(future), future.result(),
                           f"{time.perf_counter() - started:.0f} s into the grid")
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


def _run_here(grid: GridConfig, group: list[Cell], total: int,
              settle: Callable[[list[Cell], list[dict[str, Any]], str], None]) -> None:
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
        settle([cell], [result], "finished already, skipped" if f else
               f"done in {time.perf_counter() - start:.0f} s")

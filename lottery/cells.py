"""Running a grid's cells, whichever launcher runs them: what is left to run (IMP cells, and the controls that
train with their masks), the one definition of running a pack of cells, and each finished cell's record and line.

A launcher (``lottery.launchers``) only decides *where* a pack runs: in this process, in a pool of processes,
or as a SLURM array task. Each calls ``run_group`` for its pack."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from lottery.config import ConfigError
from lottery.grid import Cell, GridConfig, record_path, recorded
from lottery.pruning.levels import count_levels
from lottery.rundir import diverged_message, ended, read_results, run_dir, write_results
from lottery.runner import run_pack

log = logging.getLogger("lottery")


@dataclass
class Plan:
    """What a grid (or one ``--cell``) has left: ``done`` holds the results already settled (recorded, or
    controls of a diverged ticket); ``phases`` the IMP cells, then the controls that train with their masks."""
    total: int
    chosen: list[Cell]
    done: dict[int, dict[str, Any]] = field(default_factory=dict)
    phases: tuple[list[Cell], list[Cell]] = field(default_factory=lambda: ([], []))


def phases(todo: list[Cell]) -> tuple[list[Cell], list[Cell]]:
    """The IMP cells, then the controls that train with their masks (each runs once its ticket's are in)."""
    return [c for c in todo if c.source is None], [c for c in todo if c.source is not None]


def plan(grid: GridConfig, cells: list[Cell], only: int | None = None) -> Plan:
    """Cells recorded in ``results_dir`` are skipped; an IMP cell whose controls still need its masks runs
    again when only its record is here (it is deterministic)."""
    chosen = cells if only is None else [cells[only]]
    out = Plan(len(cells), chosen, {c.index: r for c in chosen if (r := recorded(grid, c)) is not None})
    for c in chosen:
        if c.index in out.done:
            log.info(f"cell {c.index + 1}/{out.total} · {c.label} · recorded in {record_path(grid, c).parent}, skipped")
    todo = [c for c in chosen if c.index not in out.done]
    for i in sorted({c.source for c in todo if c.source is not None}):
        imp = cells[i]
        if count_levels(run_dir(imp.config)) < (imp.config.prune.rounds or 0):
            if only is not None:
                raise ConfigError(f"--cell {only}: the masks of cell {i} ({imp.label}) are not in "
                                  f"{run_dir(imp.config)}; run --cell {i} first")
            if i not in {c.index for c in todo}:
                log.info(f"cell {i + 1}/{out.total} · {imp.label} · runs again: its controls need its masks")
                todo.append(imp)
    todo.sort(key=lambda c: c.index)
    out.phases = phases(todo)
    return out


def ticket_outcome(grid: GridConfig, cells: list[Cell], cell: Cell,
                   known: dict[int, dict[str, Any]]) -> dict[str, Any] | None:
    """A control's settled result when its ticket diverged (no masks to train with: it shares the ticket's
    fate), else None. ``known``: results in hand; otherwise the ticket's record or run directory."""
    if cell.source is None:
        return None
    ticket = cells[cell.source]
    result = known.get(ticket.index) or recorded(grid, ticket) or read_results(run_dir(ticket.config))
    if not (result or {}).get("diverged"):
        return None
    return {"finished": False, "run": cell.config.run_name, "rounds": [],
            "diverged": {**result["diverged"], "what": f"its ticket {ticket.label} diverged"}}


def keep(grid: GridConfig, cell: Cell, result: dict[str, Any], total: int, state: str) -> None:
    """A settled cell: its record in ``results_dir`` (at once, so a grid longer than a sitting keeps it) and one
    line."""
    if grid.results_dir:
        write_results(record_path(grid, cell).parent, result)
    if result.get("diverged"):
        log.info(f"cell {cell.index + 1}/{total} · {cell.label} · DIVERGED · {diverged_message(result)}")
        return
    last = result["rounds"][-1]
    log.info(f"cell {cell.index + 1}/{total} · {cell.label} · {state} · {last['remaining_pct']:.1f} % remaining"
             f" · test {100 * last.get('test_acc', float('nan')):.2f} %")


def run_group(grid: GridConfig, group: list[Cell]) -> list[dict[str, Any]]:
    """Run one pack of compatible cells (stacked members, or one cell): the one definition of running cells,
    whatever the launcher; a finished run is read back, an interrupted one resumes from its checkpoint."""
    return run_pack([c.config for c in group], exact=grid.members_exact)


def collect(grid: GridConfig, cells: list[Cell]) -> tuple[list[dict[str, Any]], list[Cell]]:
    """The settled results of the cells (records, else run directories), in cell order, and the cells still
    without one (failed, running or not started): what a gather after a cluster run tables."""
    results, missing = [], []
    for cell in cells:
        result = recorded(grid, cell)
        if result is None:
            data = read_results(run_dir(cell.config))
            result = data if ended(data) else None
        if result is None:
            missing.append(cell)
        else:
            results.append(result)
    return results, missing

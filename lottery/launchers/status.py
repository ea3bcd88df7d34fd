"""``lottery.compare GRID --status``: every cell's state, whichever launcher ran it.

recorded (its record is in ``results_dir``), finished, diverged, running or queued (with its SLURM job id),
failed (its job ended without a result: the log's path and last line), interrupted (a checkpoint to resume
from, no job), or not started."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from lottery.cells import ticket_outcome
from lottery.grid import Cell, GridConfig, recorded
from lottery.launchers.slurm import live_jobs, read_jobs
from lottery.rundir import diverged_message, ended, lock_holder, read_results, run_dir

# lines the scheduler and submitit add after a job's own last word
NOISE = ("srun:", "slurmstepd", "submitit ", "Bypassing signal", "Exiting after", "Job completed", "Submitted job")


def last_line(*files: str) -> str:
    """The job's own last line: the last non-empty line of the first of ``files`` that has one (a job's stderr,
    then its stdout), past what srun and submitit append."""
    for name in files:
        try:
            lines = [ln.strip() for ln in Path(name).read_text(errors="replace").splitlines()
                     if ln.strip() and not ln.strip().startswith(NOISE)]
        except OSError:
            continue
        if lines:
            return lines[-1][:300]
    return "(no log yet)"


def running_here(cells: list[Cell]) -> dict[str, str]:
    """The cells a process on this machine is training now (run name → who): a cell's own run-directory lock,
    or the lock of a pack of stacked members (its ``pack.json`` names them)."""
    out = {c.config.run_name: h for c in cells if (h := lock_holder(run_dir(c.config))) is not None}
    for root in sorted({run_dir(c.config).parent / "packs" for c in cells}):
        for pack in sorted(root.iterdir()) if root.is_dir() else []:
            if not pack.is_dir() or (holder := lock_holder(pack)) is None:
                continue
            try:
                members = json.loads((pack / "pack.json").read_text())["members"]
            except (OSError, ValueError, KeyError, TypeError):
                continue
            out.update({m: f"{holder}, stacked in {pack.name}" for m in members if isinstance(m, str)})
    return out


def cell_state(grid: GridConfig, cells: list[Cell], cell: Cell, jobs: dict[str, Any],
               live: dict[str, str], here: dict[str, str]) -> tuple[str, str]:
    """(state, detail) of one cell."""
    if recorded(grid, cell) is not None:
        data = recorded(grid, cell) or {}
        return ("recorded", "") if data.get("finished") else ("diverged", diverged_message(data))
    data = read_results(run_dir(cell.config))
    if ended(data) == "finished":
        return "finished", str(run_dir(cell.config))
    if ended(data) == "diverged":
        return "diverged", diverged_message(data)
    settled = ticket_outcome(grid, cells, cell, {})
    if settled is not None:
        return "diverged", settled["diverged"]["what"]
    job = jobs.get(cell.config.run_name)
    if job is not None:
        state = live.get(str(job.get("job")))
        if state == "RUNNING":
            return "running", f"job {job['job']}"
        if state is not None:
            return "queued", f"job {job['job']} ({state.lower()})"
        return "failed", (f"job {job['job']} ended without a result · log {job.get('stderr')} · "
                          f"{last_line(str(job.get('stderr')), str(job.get('stdout')))}")
    if cell.config.run_name in here:  # trained on this machine now, by a local grid
        return "running", here[cell.config.run_name]
    if (run_dir(cell.config) / "checkpoints" / "last.ckpt").is_file():
        return "interrupted", f"resumes from {run_dir(cell.config) / 'checkpoints' / 'last.ckpt'}"
    return "not started", ""


def status_lines(grid: GridConfig, cells: list[Cell]) -> list[str]:
    jobs = read_jobs(grid)
    live = live_jobs() if jobs else {}
    here = running_here(cells)
    states = []
    lines = []
    for cell in cells:
        state, detail = cell_state(grid, cells, cell, jobs, live, here)
        states.append(state)
        tail = f" · {detail}" if detail else ""
        lines.append(f"cell {cell.index + 1}/{len(cells)} · {cell.label} · {state}{tail}")
    counts = Counter(states)
    order = ("recorded", "finished", "running", "queued", "failed", "diverged", "interrupted", "not started")
    lines.append(f"{len(cells)} cells: " + ", ".join(f"{counts[s]} {s}" for s in order if counts[s]))
    gather = jobs.get("gather")
    if gather:
        state = live.get(str(gather.get("job")))
        lines.append(f"gather job {gather['job']}: " + (state.lower() if state else
                     f"ended · log {gather.get('stderr')} · {last_line(str(gather.get('stderr')))}"))
    elif live:
        lines.append("no gather job queued: rerun the grid with --launcher slurm to submit what is left")
    return lines

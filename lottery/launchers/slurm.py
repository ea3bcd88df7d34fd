"""The SLURM launcher: a grid's packs as job arrays on a cluster, through submitit.

    python -m lottery.compare GRID --launcher slurm launcher.partition=gpu launcher.time_min=120
    python -m lottery.compare GRID --status

The IMP packs go in as one job array; the controls, which train with the tickets' masks, as a second array
that starts once the first has ended (``afterany``: a control whose ticket failed fails alone and says why);
then a gather job writes the table, statistics and figures of whatever finished. Each array task runs one
pack through ``lottery.cells.run_group``, as the local launcher does, and keeps each cell's record. A job
preempted or near its time limit is requeued by submitit (``Checkpointable``) and its pack resumes from its
``last.ckpt``; a job SLURM stops (SIGTERM) exits non-zero and marks nothing finished. A shared filesystem is
assumed: the jobs read the grid and write the run directories where the submitting shell sees them.
Job ids and log paths go to ``<output_dir>/slurm/jobs.json`` for ``--status``; a rerun submits only the cells
that are neither finished nor queued.
"""

from __future__ import annotations

import getpass
import json
import logging
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import submitit

from lottery.atomic import write_json
from lottery.cells import Plan, collect, keep, run_group, ticket_outcome
from lottery.config import ConfigError
from lottery.console import run_cli, setup
from lottery.grid import Cell, GridConfig, LauncherConfig, load_grid
from lottery.pack import packs
from lottery.pruning.levels import count_levels
from lottery.report import report_grid
from lottery.rundir import read_results, run_dir

log = logging.getLogger("lottery")
LIVE = ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "RESIZING", "SUSPENDED", "STOPPED",
        "REQUEUE_HOLD", "REQUEUE_FED", "SIGNALING", "STAGE_OUT")


def jobs_file(grid: GridConfig) -> Path:
    return Path(grid.output_dir) / "slurm" / "jobs.json"


def read_jobs(grid: GridConfig) -> dict[str, Any]:
    """``jobs.json``: per run name the job id and log paths of its latest submission (and the gather job's)."""
    path = jobs_file(grid)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: not readable JSON ({e}); it only lists job ids for --status: move it "
                          "away and rerun") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ConfigError(f"{path}: not a mapping of run names to jobs; move it away and rerun")
    return data


def live_jobs() -> dict[str, str]:
    """This user's jobs SLURM still holds (queued, running, requeued): job id (``123_4`` for an array
    task) → state, from ``squeue``; empty when there is no ``squeue`` here."""
    if shutil.which("squeue") is None:
        return {}
    out = subprocess.run(["squeue", "-h", "-r", "-o", "%i|%T", "-u", getpass.getuser()], capture_output=True,
                         text=True, timeout=60)
    if out.returncode != 0:
        raise ConfigError(f"squeue failed ({out.stderr.strip() or out.returncode}); is the cluster reachable?")
    return {job: state for line in out.stdout.splitlines() if "|" in line
            for job, state in [line.strip().split("|", 1)] if state in LIVE}


class CellsJob(submitit.helpers.Checkpointable):
    """One array task: one pack of the grid's cells. Checkpointable: preempted or near its time limit, it is
    requeued with the same arguments and the pack resumes from its own ``last.ckpt`` (nothing to save here)."""

    def __call__(self, config: str, overrides: list[str], indices: list[int]) -> int:
        return _exit_with(lambda: _run_cells(config, overrides, indices))


class GatherJob:
    """The last job: the table, statistics, figures and W&B summary of every cell that ended."""

    def __call__(self, config: str, overrides: list[str], plots: bool) -> int:
        return _exit_with(lambda: _gather(config, overrides, plots))


def _exit_with(body) -> int:
    setup()
    code = run_cli(body)
    if code:  # the scheduler sees the failure (the error line is the log's last)
        sys.exit(code)
    return 0


def _run_cells(config: str, overrides: list[str], indices: list[int]) -> None:
    grid, cells = load_grid(config, overrides)
    group, total = [cells[i] for i in indices], len(cells)
    for cell in list(group):
        settled = ticket_outcome(grid, cells, cell, {})
        if settled is not None:
            group.remove(cell)
            log.info(f"cell {cell.index + 1}/{total} · {cell.label} · not run: {settled['diverged']['what']}")
        elif cell.source is not None:
            ticket = cells[cell.source]
            if count_levels(run_dir(ticket.config)) < (ticket.config.prune.rounds or 0):
                raise ConfigError(f"cell {cell.index + 1}/{total}: the masks of its ticket, cell {ticket.index + 1} "
                                  f"({ticket.label}), "
                                  f"are not in {run_dir(ticket.config)}: that cell did not finish (see --status); "
                                  "rerun the grid to submit both again")
    start = time.perf_counter()
    for cell, result in zip(group, run_group(grid, group), strict=True):
        keep(grid, cell, result, total, f"done in {time.perf_counter() - start:.0f} s")


def _gather(config: str, overrides: list[str], plots: bool) -> None:
    grid, cells = load_grid(config, overrides)
    results, missing = collect(grid, cells)
    if missing:
        log.warning(f"{len(missing)} of {len(cells)} cells have no result and are left out of the table "
                    f"(first: cell {missing[0].index}, {missing[0].label}); see --status")
    if not any(r.get("finished") for r in results):
        raise ConfigError(f"grid {grid.name}: no cell finished, so there is no table; see --status")
    report_grid(grid, cells[0].config.wandb, results, plots=plots)


def _executor(grid: GridConfig, cells: list[Cell], opts: LauncherConfig) -> submitit.SlurmExecutor:
    folder = Path(grid.output_dir).resolve() / "slurm" / "logs"
    executor = submitit.SlurmExecutor(folder=folder, max_num_timeout=opts.max_requeues)
    params: dict[str, Any] = {
        "job_name": f"lottery-{grid.name}", "time": opts.time_min, "array_parallelism": opts.max_parallel,
        "cpus_per_task": opts.cpus_per_task or max(c.config.train.threads or 1 for c in cells),
        "setup": list(opts.setup), "additional_parameters": {"chdir": str(Path.cwd()), **opts.sbatch},
    }
    optional = {"partition": opts.partition, "account": opts.account, "qos": opts.qos,
                "gpus_per_node": opts.gpus_per_task or None, "mem": f"{opts.mem_gb:g}GB" if opts.mem_gb else None}
    executor.update_parameters(**params, **{k: v for k, v in optional.items() if v is not None})
    return executor


def _submit_array(executor: submitit.SlurmExecutor, groups: list[list[Cell]], config: str, overrides: list[str],
                  after: list[str]) -> list[submitit.Job]:
    if not groups:
        return []
    executor.update_parameters(dependency=f"afterany:{':'.join(after)}" if after else None)
    n = len(groups)
    return executor.map_array(CellsJob(), [config] * n, [list(overrides)] * n, [[c.index for c in g] for g in groups])


def launch_slurm(grid: GridConfig, cells: list[Cell], plan: Plan, config: str, overrides: list[str],
                 plots: bool = True) -> None:
    """Submit what is left of the plan (IMP array, controls' array, gather job) and return; ``--status``
    follows them."""
    if shutil.which("sbatch") is None:
        raise ConfigError("grid.launcher.name: 'slurm' needs sbatch here; run on a SLURM login node (or use "
                          "--launcher local)")
    if any(c.config.train.strategy.startswith("ddp") for c in cells):
        raise ConfigError("grid.launcher.name: 'slurm' runs each pack on one device; a DDP run (train.strategy="
                          "ddp) goes through lottery.train under srun (see the README's sbatch example)")
    jobs, live = read_jobs(grid), live_jobs()
    queued = {run for run, job in jobs.items() if run != "gather" and job.get("job") in live}
    phases: list[list[Cell]] = []
    for phase in plan.phases:
        todo = []
        for cell in phase:
            data = read_results(run_dir(cell.config))
            if data is not None and (data.get("finished") or data.get("diverged")):
                keep(grid, cell, data, plan.total, "finished already, recorded")
            elif cell.config.run_name in queued:
                log.info(f"cell {cell.index + 1}/{plan.total} · {cell.label} · queued already "
                         f"(job {jobs[cell.config.run_name]['job']}), not submitted again")
            elif ticket_outcome(grid, cells, cell, plan.done) is None:
                todo.append(cell)
        phases.append(todo)
    imp, controls = ([[ph[i] for i in g] for g in packs([c.config for c in ph], grid.members_per_process)]
                     for ph in phases)
    if not imp and not controls:
        if queued:
            log.info(f"{len(queued)} cells are queued or running already; their gather job writes the table")
            return
        results, _ = collect(grid, cells)
        report_grid(grid, cells[0].config.wandb, results, plots=plots)
        return
    executor = _executor(grid, [c for g in imp + controls for c in g], grid.launcher)
    first = _submit_array(executor, imp, config, overrides, [])
    tickets = {cells[c.source].config.run_name for g in controls for c in g}
    waiting = sorted({jobs[r]["job"].split("_")[0] for r in tickets & queued} | {j.job_id.split("_")[0] for j in first})
    second = _submit_array(executor, controls, config, overrides, waiting)
    after = sorted({j.job_id.split("_")[0] for j in first + second} |
                   {jobs[r]["job"].split("_")[0] for r in queued})
    executor.update_parameters(dependency=f"afterany:{':'.join(after)}", cpus_per_task=1, gpus_per_node=None)
    gather = executor.submit(GatherJob(), config, list(overrides), plots)
    for group, job in zip(imp + controls, first + second, strict=True):
        for cell in group:
            jobs[cell.config.run_name] = _job_entry(job, cell.index)
    jobs["gather"] = _job_entry(gather, None)
    write_json(jobs_file(grid), jobs)
    n_imp, n_ctl = sum(map(len, imp)), sum(map(len, controls))
    log.info(f"submitted {n_imp} IMP cells in {len(imp)} array tasks"
             + (f" (job {first[0].job_id.split('_')[0]})" if first else "")
             + (f", {n_ctl} control cells in {len(controls)} tasks (job {second[0].job_id.split('_')[0]}, after the "
                "IMP cells)" if second else "")
             + f", gather job {gather.job_id}; follow them with --status")


def _job_entry(job: submitit.Job, index: int | None) -> dict[str, Any]:
    return {"job": job.job_id, "cell": index, "stdout": str(job.paths.stdout), "stderr": str(job.paths.stderr)}

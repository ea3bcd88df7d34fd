"""A grid of cells: starts × sources × seeds × models on top of a train config, plus the controls of each
IMP cell; every cell's config built and checked before anything runs. ``lottery.compare`` runs grids."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field, fields
from itertools import product
from pathlib import Path
from typing import Any, Literal

from lottery.config import Config, ConfigError, InitConfig, PruneConfig, from_dict, parse_overrides, read_yaml, resolve
from lottery.config.schema import opt
from lottery.config.typed import set_dotted
from lottery.preflight import check_config
from lottery.pruning.controls import CONTROLS as REGISTERED_CONTROLS
from lottery.results import method, treatment
from lottery.rundir import ended, read_results, run_dir

_GRID_NAME = re.compile(r"[A-Za-z0-9._+-]{1,200}")
START_KEYS = tuple(f.name for f in fields(InitConfig) if f.name != "seed")  # a start: every init field but seed
METHOD_KEYS = ("at_init", "at_init_batches", "invert", "scope")  # a method: the prune fields that choose the masks
# controls of a ticket, trained on its masks level by level (prune.masks_from); "ticket-masks" retrains the
# ticket itself from its masks (a check: it reproduces the IMP cell's rounds exactly)
CONTROLS = (*REGISTERED_CONTROLS, "ticket-masks")


# sbatch options the SLURM launcher sets itself (arrays, logs, dependencies, requeue signal)
LAUNCHER_OWNS = ("array", "output", "error", "dependency", "open-mode", "signal", "job-name", "chdir", "wrap")
_SBATCH_KEY = re.compile(r"[a-z][a-z0-9-]{0,40}")


@dataclass
class LauncherConfig:
    """Where the cells run: ``local`` (this machine; ``--workers N`` processes) or ``slurm`` (a SLURM cluster
    through submitit: IMP packs as one job array, controls as a second array after it, then a gather job; a
    shared filesystem is assumed). The ``slurm`` options become sbatch flags."""
    name: Literal["local", "slurm"] = opt("local", "local: this machine; slurm: a SLURM cluster (submitit)")
    partition: str | None = opt(None, "SLURM partition; null: the cluster's default")
    time_min: int = opt(60, "each job's time limit in minutes; a pack that reaches it is requeued and resumes "
                            "from its last checkpoint (at most max_requeues times)")
    max_requeues: int = opt(3, "times a job that reached its time limit is requeued")
    cpus_per_task: int | None = opt(None, "CPUs of each job; null: the cells' train.threads")
    gpus_per_task: int = opt(0, "GPUs of each job (one pack per job trains on one device)")
    mem_gb: float | None = opt(None, "memory of each job in GB; null: the partition's default")
    account: str | None = opt(None, "SLURM account to charge")
    qos: str | None = opt(None, "SLURM quality of service")
    max_parallel: int = opt(256, "array tasks running at once (sbatch --array=…%N)")
    sbatch: dict[str, str] = opt({}, "further sbatch flags without the dashes, e.g. {constraint: a100, "
                                     "mail-type: END}")
    setup: list[str] = opt([], "shell lines each job runs first, e.g. 'module load cuda' or "
                               "'source ~/venv/bin/activate'")


@dataclass
class GridConfig:
    name: str = opt("grid", "grid name: the output folder's default name and the W&B summary run's name")
    base: str = opt("", "the train config every cell starts from (path relative to this file)")
    overrides: dict[str, Any] = opt({}, "nested train-config values applied to every cell")
    starts: list[dict[str, Any]] = opt([{}], "the starts: each a mapping of init fields (scheme, scale, source, …)")
    sources: list[str] = opt([], "crossed with the starts (a start's own source wins); empty: no crossing")
    methods: list[dict[str, Any]] = opt([{}], "what chooses the masks, crossed with the starts: each a mapping of "
                                              f"prune fields ({', '.join(METHOD_KEYS)}); {{}}: IMP; e.g. "
                                              "{at_init: snip}, {at_init: snip, invert: true}")
    seeds: list[int] = opt([0], "seeds (each start × seed is one cell)")
    models: list[str] = opt([], "models crossed with everything; empty: the base config's model")
    output_dir: str = opt("", "where cells, the table, statistics and figures go; empty: runs/<name>")
    members_per_process: int = opt(1, "cells differing only in start and seed trained together as stacked "
                                      "members of one network (Sequential models; ResNets run alone); "
                                      "results as if alone")
    members_exact: bool = opt(True, "stacked members bit for bit as alone on CPU (per-member products); false: "
                                    "one batched product per layer, ≈ 15 % faster, equal within float tolerance")
    controls: list[str] = opt([], "controls trained on every IMP cell's masks, level by level (prune.masks_from): "
                                  "reinit, random_prune, signed_constant, ticket-masks; empty: none")
    controls_on: list[int] = opt([], "indices into starts whose tickets get the controls (e.g. [0]: the first "
                                     "start's only); empty: every start's")
    results_dir: str = opt("", "where every finished cell's record (cells/<run>/results.json, a small JSON) and "
                               "the table, statistics and figures are kept, e.g. results/<grid> (committed); "
                               "cells recorded there are skipped; empty: output_dir only")
    launcher: LauncherConfig = field(default_factory=LauncherConfig)


@dataclass
class Cell:
    index: int
    config: Config
    source: int | None = None  # a control's IMP cell, whose masks it trains with

    @property
    def label(self) -> str:
        spec, what = self.config.init_spec(), treatment(self.config)
        return f"{self.config.model.name} {spec.label}{'' if what == 'ticket' else ' ' + what} seed {spec.seed}"


def _merge(into: dict[str, Any], more: dict[str, Any]) -> dict[str, Any]:
    for k, v in more.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            _merge(into[k], v)
        else:
            into[k] = copy.deepcopy(v)
    return into


def load_grid(path: str | Path, overrides: list[str] = ()) -> tuple[GridConfig, list[Cell]]:  # type: ignore[assignment]
    """Read and check the whole grid, every cell's config included, before anything runs."""
    path = Path(path)
    data = read_yaml(path)
    data.setdefault("name", path.stem)
    for key, value in parse_overrides(list(overrides)):
        set_dotted(data, key, value)
    grid = from_dict(GridConfig, data, "grid.")
    if not _GRID_NAME.fullmatch(grid.name) or set(grid.name) == {"."}:
        raise ConfigError(f"grid.name: {grid.name!r} is not valid; use letters, digits, '.', '_', '+' and '-' (it "
                          "names a folder under runs/: no path separators, no '..')")
    if grid.results_dir and Path(grid.results_dir).exists() and not Path(grid.results_dir).is_dir():
        raise ConfigError(f"grid.results_dir: {grid.results_dir!r} is a file; give a folder (e.g. results/<grid>)")
    for axis in ("starts", "seeds"):
        if not getattr(grid, axis):
            raise ConfigError(f"grid.{axis}: the axis is empty; give at least one value")
    for axis in ("seeds", "models", "sources"):
        values = getattr(grid, axis)
        repeated = next((v for i, v in enumerate(values) if v in values[:i]), None)
        if repeated is not None:
            raise ConfigError(f"grid.{axis}: {repeated!r} appears more than once in {values}; list each once")
    if "models" in data and not grid.models:
        raise ConfigError("grid.models: the axis is empty; give at least one model or leave the key out")
    if "sources" in data and not grid.sources:
        raise ConfigError("grid.sources: the axis is empty; give at least one source or leave the key out")
    if grid.members_per_process < 1:
        raise ConfigError(f"grid.members_per_process: {grid.members_per_process} is not valid; use an integer ≥ 1 "
                          "(1: every cell in its own network)")
    for i, control in enumerate(grid.controls):
        if control not in CONTROLS:
            raise ConfigError(f"grid.controls[{i}]: {control!r} is not valid; choose one of {', '.join(CONTROLS)}")
    if len(set(grid.controls)) < len(grid.controls):
        raise ConfigError(f"grid.controls: {grid.controls} repeats a control")
    for i, k in enumerate(grid.controls_on):
        if not isinstance(k, int) or isinstance(k, bool) or not 0 <= k < len(grid.starts):
            raise ConfigError(f"grid.controls_on[{i}]: {k!r} is not valid; give the index of a start (0 to "
                              f"{len(grid.starts) - 1})")
    if grid.controls_on and not grid.controls:
        raise ConfigError(f"grid.controls_on: {grid.controls_on} names starts for controls, but grid.controls is "
                          "empty; list the controls or remove controls_on")
    check_launcher(grid.launcher)
    if not grid.base:
        raise ConfigError("grid.base: missing; name the train config the cells start from (e.g. lenet300_mnist.yaml)")
    base_path = (path.parent / grid.base) if not Path(grid.base).is_absolute() else Path(grid.base)
    base = _merge(read_yaml(base_path), grid.overrides)
    out = Path(grid.output_dir or f"runs/{grid.name}")
    grid.output_dir = str(out)
    for i, start in enumerate(grid.starts):
        unknown = [k for k in start if k not in START_KEYS]
        if unknown:
            raise ConfigError(f"grid.starts[{i}].{unknown[0]}: unknown key; a start sets {', '.join(START_KEYS)}")
    cells: list[Cell] = []
    seen: dict[tuple, tuple[int, int]] = {}
    start_of: dict[int, int] = {}  # cell index → index of its start, for controls_on
    for i, way in enumerate(grid.methods):
        unknown = [k for k in way if k not in METHOD_KEYS]
        if unknown:
            raise ConfigError(f"grid.methods[{i}].{unknown[0]}: unknown key; a method sets {', '.join(METHOD_KEYS)}")
    axes = (grid.models or [None], enumerate(grid.methods), enumerate(grid.starts), grid.sources or [None], grid.seeds)
    for model, (j, way), (i, start), source, seed in product(*axes):
        init = {**base.get("init", {}), **({"source": source} if source else {}), **start}
        data = _merge(copy.deepcopy(base), {"init": init, "seed": seed, "output_dir": str(out / "cells"),
                                            "prune": dict(way)})
        if model:
            data = _merge(data, {"model": {"name": model}})
        data.setdefault("wandb", {}).setdefault("tags", [grid.name])
        data["wandb"].setdefault("group", grid.name)  # one W&B group per grid, whoever runs it
        try:
            cfg = check_config(resolve({**data, "name": "cell"}))
        except ConfigError as e:
            where = f"grid.starts[{i}] ({start})" + (f", grid.methods[{j}] ({way})" if way else "")
            raise ConfigError(f"{where}: {e}") from None
        spec = cfg.init_spec()
        chooser = method(cfg.prune)
        key = (cfg.model.name, chooser, spec)  # the whole start, seed included: a new field needs no edit
        if key in seen and seen[key][0] != i:
            raise ConfigError(f"grid.starts[{i}]: duplicate start {spec.label} (seed {seed}, {cfg.model.name}); "
                              f"it repeats starts[{seen[key][0]}]")
        if key in seen:
            raise ConfigError(f"grid.methods[{j}]: duplicate method {chooser} ({way}); it repeats "
                              f"methods[{seen[key][1]}]")
        seen[key] = (i, j)
        slug = spec.label.replace("/", "-").replace("×", "x") + ("" if chooser == "imp" else f"-{chooser}")
        cfg.name = f"{cfg.model.name}-{slug}-s{seed}"
        start_of[len(cells)] = i
        cells.append(Cell(len(cells), cfg))
    if grid.controls and any(c.config.prune.control or c.config.prune.masks_from for c in cells):
        raise ConfigError("grid.controls: the base config already sets prune.control or prune.masks_from; "
                          "controls of a ticket need plain IMP cells")
    for control in grid.controls:
        for imp in [c for c in cells if c.source is None and (not grid.controls_on or
                                                              start_of[c.index] in grid.controls_on)]:
            cfg = copy.deepcopy(imp.config)
            # not validated against the disk: the IMP cell's masks exist only once it has run
            cfg.prune.masks_from = str(run_dir(imp.config))
            chooser, plain = method(cfg.prune), PruneConfig()
            cfg.prune.masks_of = None if chooser == "imp" else chooser  # the masks are read, not chosen again
            for key in ("at_init", "at_init_batches", "invert"):  # the masks are read back, not chosen again
                setattr(cfg.prune, key, getattr(plain, key))
            cfg.prune.control = None if control == "ticket-masks" else control
            cfg.name = f"{imp.config.name}-{control.replace('_', '-')}"
            cells.append(Cell(len(cells), cfg, source=imp.index))
    return grid, cells


def check_launcher(launcher: LauncherConfig) -> None:
    for key, low in (("time_min", 1), ("max_requeues", 0), ("cpus_per_task", 1), ("gpus_per_task", 0),
                     ("max_parallel", 1)):
        value = getattr(launcher, key)
        if value is not None and value < low:
            raise ConfigError(f"grid.launcher.{key}: {value} is not valid; use an integer ≥ {low}")
    if launcher.mem_gb is not None and launcher.mem_gb <= 0:
        raise ConfigError(f"grid.launcher.mem_gb: {launcher.mem_gb} is not valid; use a number > 0 or null")
    for key, value in launcher.sbatch.items():
        if not _SBATCH_KEY.fullmatch(key):
            raise ConfigError(f"grid.launcher.sbatch.{key}: not an sbatch option name; write it without dashes, "
                              "in lower case (e.g. constraint, mail-type)")
        if key in LAUNCHER_OWNS:
            raise ConfigError(f"grid.launcher.sbatch.{key}: the launcher sets it itself; remove it")
        if any(ch in value for ch in "\n\r\0"):  # one #SBATCH line each: a newline would start another
            raise ConfigError(f"grid.launcher.sbatch.{key}: {value!r} holds a line break; give one line")
    for i, line in enumerate(launcher.setup):
        if "\0" in line:
            raise ConfigError(f"grid.launcher.setup[{i}]: {line!r} holds a NUL byte; give a shell line")


def record_path(grid: GridConfig, cell: Cell) -> Path:
    return Path(grid.results_dir) / "cells" / cell.config.run_name / "results.json"


def recorded(grid: GridConfig, cell: Cell) -> dict[str, Any] | None:
    """The cell's committed record under ``results_dir``, if it is there and finished."""
    data = read_results(record_path(grid, cell).parent) if grid.results_dir else None
    return data if ended(data) else None

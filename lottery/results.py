"""The tidy results table of a grid: one row per (cell, round), gathered from finished run directories."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from lottery.atomic import write_csv
from lottery.columns import LEGACY_COLUMNS, current_names
from lottery.config.typed import ConfigError
from lottery.environment import environment_id
from lottery.rundir import ended, read_results

IDENTITY = ("model", "dataset", "scheme", "source", "scale", "seed", "control", "start")
COLUMNS = (*IDENTITY, "round", "epoch", "remaining_pct", "test_acc", "val_acc", "best_monitor", "epochs_to_best",
           "steps_to_best", "test_acc_at_best", "run", "environment")
_SLEEPING = re.compile(r"^sleeping/(.+)/((?:abs|rel)_[^/]+)$")


def method(prune: Any) -> str:
    """What chose a run's masks: ``imp``, or a pruning-at-initialisation scorer (``snip``, …); ``-inverted``
    when it kept the lowest scores (Frankle et al. 2021's ablation)."""
    return (prune.at_init or "imp") + ("-inverted" if prune.invert else "")


def treatment(cfg: Any) -> str:
    """``ticket`` (IMP itself) or the pruning-at-init method (``snip``, ``imp-inverted``, …); a control of a
    ticket's masks (``reinit``, ``random_prune``, ``signed_constant``, ``ticket-masks``: the ticket retrained
    from its masks), after what chose those masks when that was not IMP (``snip reinit``); or a control that
    derives its own masks (``reinit-own-masks``, …)."""
    p = cfg.prune
    if p.masks_from is None:
        own = method(p)
        what = "ticket" if own == "imp" else own
        return what if p.control is None else f"{'' if own == 'imp' else own + ' '}{p.control}-own-masks"
    return f"{p.masks_of + ' ' if p.masks_of else ''}{p.control or 'ticket-masks'}"


def identity(cfg: Any) -> dict[str, Any]:
    """The columns that say which cell a round belongs to (for tidy tables across runs)."""
    spec, what = cfg.init_spec(), treatment(cfg)
    return {"run": cfg.run_name, "model": cfg.model.name, "dataset": cfg.data.dataset, "scheme": spec.scheme,
            "source": spec.source, "scale": spec.scale, "seed": spec.seed, "control": what,
            "start": spec.label if what == "ticket" else f"{spec.label} {what}"}


def tidy(row: dict[str, Any], monitor: str = "val_loss") -> dict[str, Any]:
    """One round of one run as a tidy row; sleeping fractions are averaged over the pruned layers."""
    row = current_names(row)
    out = {k: row.get(k) for k in (*IDENTITY, "round", "epoch", "remaining_pct", "test_acc", "val_acc",
                                   "epochs_to_best", "steps_to_best", "run")}
    out["control"] = out["control"] or "ticket"  # records from before controls existed
    out["best_monitor"] = row.get(f"best_{monitor}")
    out["test_acc_at_best"] = row.get("at_best/test_acc")
    for key in ("scale", "remaining_pct"):  # W&B hands 100.0 back as 100
        if out[key] is not None:
            out[key] = float(out[key])
    sleeping: dict[str, list[float]] = {}
    for key, value in sorted(row.items()):  # one summation order, whatever order the source kept
        m = _SLEEPING.match(key)
        if m and value is not None:
            sleeping.setdefault(f"sleeping_{m.group(2)}", []).append(float(value))
    out.update({k: sum(v) / len(v) for k, v in sorted(sleeping.items())})
    if row.get("collapsed_layers") is not None:  # pruning at init: layers left without a weight at this level
        out["collapsed_layers"] = int(row["collapsed_layers"])
    return out


def rows_of(results: dict[str, Any]) -> list[dict[str, Any]]:
    """A run's tidy rows; ``environment`` names the environment that made it (``environments.json`` beside a
    grid's table holds each one whole)."""
    monitor = results.get("config", {}).get("prune", {}).get("monitor", "val_loss")
    env = run_environment(results)
    return [{**tidy(r, monitor), "environment": env} for r in results["rounds"]]


def run_environment(results: dict[str, Any]) -> str:
    """The id of the environment that made a run: ``unrecorded``, ``mixed`` (resumed elsewhere) or a hash."""
    return "mixed" if len(results.get("environments") or []) > 1 else environment_id(results.get("environment"))


def environments(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``environments.json`` of a grid's table: each environment id of its column, with how many runs it made
    and the environment whole (``unrecorded``: runs from before records carried one; ``mixed``: runs resumed
    in another environment, with each of them)."""
    out: dict[str, Any] = {}
    for res in results:
        key = run_environment(res)
        entry = out.setdefault(key, {"runs": 0})
        entry["runs"] += 1
        if key == "mixed":
            entry.setdefault("environments", {}).update({environment_id(e): e for e in res["environments"]})
        elif key != "unrecorded":
            entry["environment"] = res["environment"]
    return dict(sorted(out.items()))


def finished_results(folders: Iterable[Path]) -> list[dict[str, Any]]:
    """Every finished run (``results.json`` with ``finished``) under the folders, in a stable order; a
    damaged ``results.json`` is named (``--gather`` must not drop a cell silently)."""
    found = {}
    for folder in folders:
        for path in sorted(Path(folder).rglob("results.json")):
            try:
                data = read_results(path.parent, strict=True)
            except ConfigError as e:
                raise ConfigError(f"--gather: {e}") from None
            if ended(data) == "finished":
                found[data["run"]] = data
    return [found[k] for k in sorted(found)]


def sort_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: (str(r["model"]), str(r["start"]), int(r["seed"]), int(r["round"])))


def write_table(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    extra = sorted({k for r in rows for k in r} - set(COLUMNS))
    write_csv(path, sort_rows(rows), [*COLUMNS, *extra])


NEEDED = ("start", "seed", "round", "remaining_pct", "test_acc", "run")


def read_table(path: str | Path, needed: Sequence[str] = NEEDED) -> Any:
    """The table as a pandas DataFrame (pandas is only needed by readers: plots, statistics, notebook);
    ``ConfigError`` naming the file unless it is a table with rows and the ``needed`` columns (a grid's)."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"results: {str(path)!r} is not a file; give a grid's results.csv (python -m lottery.compare "
                          "writes it)")
    try:
        df = pd.read_csv(path).rename(columns=LEGACY_COLUMNS)
    except (ValueError, UnicodeDecodeError, OSError, pd.errors.ParserError) as e:
        why = " ".join(str(e).split())[:120]
        raise ConfigError(f"results: {path} is not a readable CSV table ({type(e).__name__}: {why})") from None
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise ConfigError(f"results: {path} lacks the columns {missing}; give "
                          + ("a grid's results.csv (python -m lottery.compare writes it)" if needed == NEEDED else
                             f"a table with the columns {list(needed)}"))
    if df.empty:
        raise ConfigError(f"results: {path} has no rows; run the grid first")
    return df

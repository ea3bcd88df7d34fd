"""The section every results page ends with: which environment trained its cells, as far as it is known."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lottery.environment import describe
from lottery.literature.tables import is_stability
from lottery.results import read_table

UNRECORDED = ("made before records carried their environment (before 2026-12-06), so not recorded. The "
              "project's notes of that time name torch 2.14.1 on 2-core AMD EPYC machines (AVX2); "
              "`constraints/results.txt` pins the package versions this project's machines installed then, as "
              "far as they are known. A retrain elsewhere is checked within the seeds' spread, not bit for bit")


def _environments(folder: Path) -> dict[str, Any]:
    try:
        known = json.loads((folder / "environments.json").read_text())
    except (OSError, ValueError):
        return {}
    return known if isinstance(known, dict) else {}


def environment_section(df: Any) -> str:
    """How many cells each environment of the table made, each described (``environments.json`` beside the
    table holds them whole); with the cells of the other tables the page read (``df.attrs["also_read"]``:
    their ``results.csv`` paths, such as the inverted grid's beside Frankle et al. 2021's)."""
    tables = [(Path(str(df.attrs.get("folder", "."))), df)]
    tables += [(Path(p).parent, read_table(p)) for p in df.attrs.get("also_read", ())]
    known: dict[str, Any] = {}
    cells: dict[str, set[str]] = {}
    for folder, table in tables:
        known = {**_environments(folder), **known}
        column = table["environment"] if "environment" in table.columns else ["unrecorded"] * len(table)
        for run, env in zip(table["run"] if "run" in table.columns else table.index, column, strict=True):
            cells.setdefault(str(env), set()).add(str(run))
    stability = is_stability(df)
    unit, name = ("measurements", "stability.csv") if stability else ("cells", "results.csv")
    rows = [f"| environment | {unit} | what made them |", "|---|---|---|"]
    for env, runs in sorted(cells.items(), key=lambda kv: (kv[0] == "unrecorded", kv[0])):
        if env == "unrecorded":
            what = UNRECORDED
        elif env == "mixed":
            what = "resumed in another environment than they started in (see environments.json)"
        else:
            entry = known.get(env)
            what = describe(entry["environment"]) if isinstance(entry, dict) and "environment" in entry else \
                "not described: its records name only the id, and environments.json beside the table has no entry"
        rows.append(f"| `{env}` | {len(runs)} | {what} |")
    check = ("a record deleted and measured again by rerunning the study gives the same row there" if stability else
             "`python -m lottery.environment RUN_DIR` compares yours with a run's, and `scripts/retrain_cell.py` "
             "retrains a committed cell and checks it bit for bit there, within the seeds' spread elsewhere")
    return "\n".join(["", "## Environment", "",
                      f"Which environment made each {unit.removesuffix('s')} (the `environment` column of `{name}`; "
                      "`environments.json` holds each one whole). Training is bit-for-bit reproducible only in "
                      f"the environment that made a record: {check}.", "", *rows, ""])

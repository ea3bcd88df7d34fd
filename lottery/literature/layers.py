"""Where each method puts its weights: the share of each prunable layer it keeps at the sparsest level, read from
the cell records beside a grid's table (``cells/*/results.json``, which ``--gather`` reads too). Frankle et al.
(2021) find that what a pruning-at-initialisation method decides is in effect these per-layer shares (shuffling
within a layer keeps them and costs little), so the page shows them. Descriptive."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from lottery.config import ConfigError
from lottery.results import finished_results, tidy

PREFIX = "remaining_pct/"


def _shares(row: dict[str, Any], file: Path) -> dict[str, float]:
    out = {}
    for key, value in row.items():
        if key.startswith(PREFIX):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 100:
                raise ConfigError(f"{file}: {key} is {value!r}, not a share in 0–100 %; delete that run's record "
                                  "and gather again")
            out[key[len(PREFIX):]] = float(value)
    return out


def layer_section(folder: str | Path, label: dict[str, str], runs: set[str] | None = None) -> str:
    """The table (mean ± std over seeds, %), or "" when no cell records lie beside the table. ``label``: the
    page's names of the arms it shows (the table's ``control`` values: ``ticket``, ``snip``, …), in its order;
    ``runs``: the table's runs (records not gathered into it are not read, so the section describes it)."""
    cells = Path(folder) / "cells"
    if not cells.is_dir():
        return ""
    chosen = []
    for record in finished_results([cells]):
        if runs is not None and record.get("run") not in runs:
            continue
        file = cells / str(record.get("run")) / "results.json"
        rounds = [r for r in record["rounds"] if isinstance(r, dict) and isinstance(r.get("round"), int)]
        arm = tidy(rounds[0])["control"] if rounds else None  # the table's name: ticket, snip, snip reinit, …
        if arm in label:  # what chose the masks; a control keeps its source's shares
            chosen.append((arm, {r["round"]: r for r in rounds}, file))
    if not chosen:
        return ""
    level = min(max(rounds, default=0) for _, rounds, _ in chosen)  # the sparsest level every method reached
    shares: dict[str, dict[str, list[float]]] = {}
    for m, rounds, file in chosen:
        for layer, value in _shares(rounds[level], file).items():
            shares.setdefault(m, {}).setdefault(layer, []).append(value)
    layers = sorted({layer for by in shares.values() for layer in by})
    lines = ["| method | " + " | ".join(f"`{n}`" for n in layers) + " |", "|" + "---|" * (len(layers) + 1)]
    for m in [*(k for k in label if k in shares), *(k for k in shares if k not in label)]:  # the page's order
        by = shares[m]
        cells_text = []
        for layer in layers:
            v = np.array(by.get(layer, []))
            cells_text.append("–" if not len(v) else f"{v.mean():.2f}" + (
                f" ± {v.std(ddof=1):.2f}" if len(v) > 1 and not math.isclose(v.std(), 0.0, abs_tol=1e-9) else ""))
        lines.append(f"| {label.get(m, m)} | " + " | ".join(cells_text) + " |")
    return "\n".join([f"Where each method keeps its weights at level {level} (the share of each prunable layer "
                      "kept, %, mean ± std over seeds; from the cell records in `cells/`; a layer with a rate of "
                      "its own follows IMP's schedule under every method):", "", *lines, ""])

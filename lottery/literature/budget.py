"""The budget check beside a grid's table (``budget.csv``, written by ``scripts/budget_check.py``): one level of
chosen cells retrained on their own masks and w0 for longer. A page whose rows are still improving at a level's
last epoch reports lower bounds; this says how much a longer budget adds per method, and whether a gap between
IMP and a method survives it. Descriptive (95 % intervals over seeds), never one of the page's claims."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from lottery.config import ConfigError
from lottery.literature.tables import pct
from lottery.literature.verdicts import describe
from lottery.literature.wording import ci_text
from lottery.results import read_table

NUMBERS = ("seed", "level", "remaining_pct", "epochs_within", "acc_within", "epochs", "acc_all", "best_all")
FILE = "budget.csv"


def _read(path: Path) -> Any:
    df = read_table(path, ("method", *NUMBERS))
    for column in NUMBERS:
        values = pd.to_numeric(df[column], errors="coerce")
        if values.isna().any() or not values.between(0, 1e6).all():
            bad = df[column][values.isna() | ~values.between(0, 1e6)].iloc[0]
            shown = repr(bad) if isinstance(bad, str) else str(bad)
            raise ConfigError(f"results: {path}: column {column!r} holds {shown}; rerun scripts/budget_check.py "
                              "to rewrite it")
        df[column] = values
    if "start" in df.columns and df["start"].nunique() > 1:
        raise ConfigError(f"results: {path} holds several starts ({', '.join(map(str, df['start'].unique()))}); "
                          "this page compares the methods of one start: keep one start's rows")
    twice = df.duplicated([c for c in ("method", "start", "seed", "level", "epochs") if c in df.columns])
    if twice.any():
        r = df[twice].iloc[0]
        raise ConfigError(f"results: {path}: {r['method']!r} seed {int(r['seed'])} level {int(r['level'])} "
                          f"({int(r['epochs'])} epochs) appears twice; delete one row or rerun scripts/budget_check.py")
    return df


def _acc(rows: Any, column: str) -> dict[int, float]:
    return {int(s): float(a) / 100 for s, a in zip(rows["seed"], rows[column], strict=True)}


def budget_section(folder: str | Path, label: dict[str, str], reference: str = "imp") -> str:
    """The check's tables (one per retrained level and budget), or "" when the grid has none beside it.
    ``label``: the page's names of the methods; ``reference``: the method every other is compared with."""
    path = Path(folder) / FILE
    if not path.is_file():
        return ""
    df = _read(path)
    out = []
    for (level, within, total), g in df.groupby(["level", "epochs_within", "epochs"]):
        ref = g[g["method"] == reference]
        seeds = ", ".join(str(int(s)) for s in sorted(g["seed"].unique()))
        within, total = int(within), int(total)
        head = ["method", f"within {within} epochs", f"within {total}", f"{total} − {within} (pp)",
                f"{label.get(reference, reference)} − it, {within} epochs (pp)",
                f"{label.get(reference, reference)} − it, {total} epochs (pp)", f"still improving at {total}"]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for method, m in g.groupby("method", sort=False):
            short, long = _acc(m, "acc_within"), _acc(m, "acc_all")
            gaps = ["–", "–"] if method == reference or ref.empty else [
                ci_text(describe(_acc(ref, col), _acc(m, col))) for col in ("acc_within", "acc_all")]
            late = int((m["best_all"] == m["epochs"]).sum())
            lines.append(f"| {label.get(str(method), str(method))} | {pct(short)} | {pct(long)} | "
                         f"{ci_text(describe(long, short))} | {gaps[0]} | {gaps[1]} | {late} of {len(m)} |")
        out += [f"Budget check (`python scripts/budget_check.py`, `{FILE}`): level {int(level)} "
                f"({g['remaining_pct'].mean():.1f} % remaining) of seeds {seeds} retrained on the same masks and w0 "
                f"for {total} epochs; test accuracy (%) at the minimum validation loss within the grid's "
                f"{within} epochs and within all {total}, from the same run (paired differences: mean and 95 % "
                "CI, descriptive; not one of the claims):", "", *lines, ""]
    return "\n".join(out)

"""Reading a grid's tidy table: one number per seed at a level, per cell over levels, and the levels."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

PAPERS: dict[str, Callable[[Any], str]] = {}
NEEDS: dict[str, tuple[str, ...]] = {}  # the columns a page reads, when not a grid's results.csv
COLLAPSED = 0.90  # a cell below 90 % has lost whole digits (the output layer starved), not a few points



def is_stability(table: Any) -> bool:
    """A stability study's table (its rows are measurements, counted by the study's config), not a grid's."""
    return "instability" in table.columns

def paper(name: str, needs: tuple[str, ...] | None = None) -> Callable[[Callable[[Any], str]], Callable[[Any], str]]:
    """Register a results page: ``python -m lottery.literature NAME TABLE`` writes it. ``needs``: the columns
    of the table it reads when that is not a grid's results.csv."""

    def register(fn: Callable[[Any], str]) -> Callable[[Any], str]:
        PAPERS[name] = fn
        if needs is not None:
            NEEDS[name] = needs
        return fn

    return register


def by_seed(df: Any, rnd: int, metric: str) -> dict[int, float]:
    level = df[df["round"] == rnd]
    return {int(s): float(v) for s, v in zip(level["seed"], level[metric], strict=True) if not math.isnan(v)}


def by_cell(df: Any, rnd: int, metric: str) -> list[float]:
    """Every cell's value at ``rnd`` (several starts pooled: cells, not seeds, are the units)."""
    return [float(v) for v in df.loc[df["round"] == rnd, metric] if not math.isnan(v)]


def per_cell(df: Any, metric: str, rounds: list[int] | None = None) -> dict[int, float]:
    """One number per seed (cell): the metric's mean over the rounds (all rounds the cell has if None), so
    that a cell's 20 correlated levels count once."""
    g = df if rounds is None else df[df["round"].isin(rounds)]
    means = g.groupby("seed")[metric].mean()
    return {int(s): float(v) for s, v in means.items() if not math.isnan(v)}


def mean(values: dict[int, float]) -> float:
    return float(np.mean(list(values.values()))) if values else math.nan


def pct(values: dict[int, float] | list[float]) -> str:
    v = np.array(list(values.values()) if isinstance(values, dict) else values) * 100
    if not len(v):
        return "–"
    return f"{v.mean():.2f} ± {v.std(ddof=1):.2f}" if len(v) > 1 else f"{v.mean():.2f}"


def late_stops(df: Any, length: tuple[str, int]) -> tuple[int, int]:
    """How many of the table's (seed, level) rows stopped early at the round's end, and of how many: still
    improving when the budget ran out, so their accuracy is a lower bound. ``length``: ``("steps", N)`` (the
    last tenth of N iterations counts as the end) or ``("epochs", N)`` (the last epoch)."""
    unit, n = length
    column = df["steps_to_best" if unit == "steps" else "epochs_to_best"].dropna()
    late = column >= (0.9 * n if unit == "steps" else n)
    return int(late.sum()), len(column)


def remaining(df: Any, rnd: int) -> float:
    return float(df[df["round"] == rnd]["remaining_pct"].mean())


def nearest_round(df: Any, target_pct: float) -> int | None:
    """The round whose % remaining is closest to ``target_pct`` (within 15 % of it), if the table has one."""
    levels = df.groupby("round")["remaining_pct"].mean()
    if levels.empty:
        return None
    rnd = int((np.log(levels) - math.log(target_pct)).abs().idxmin())
    return rnd if abs(levels[rnd] / target_pct - 1) < 0.15 else None


def coverage(df: Any, expected_cells: int | None = None) -> str:
    runs = df["run"].nunique()
    rounds = int(df["round"].max()) + 1 if len(df) else 0
    more = f" of the grid's {expected_cells}" if expected_cells else ""
    return f"{runs} finished cells{more}, {len(df)} rows, rounds 0–{rounds - 1}."


def spread(values: dict[int, float]) -> float:
    v = np.array(list(values.values()))
    return float(v.std(ddof=1)) if len(v) > 1 else math.nan


def collapse_table(df: Any, starts: list[str], rounds: list[int], metric: str = "test_acc") -> list[str]:
    """Cells below ``COLLAPSED`` per start (the table's ``start`` column) and level, and over the starts shown."""
    head = ["start", *[f"{remaining(df, r):.1f} %" for r in rounds]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in starts:
        g = df[df["start"] == s]
        counts = [sum(v < COLLAPSED for v in by_seed(g, r, metric).values()) for r in rounds]
        lines.append(f"| {s} | " + " | ".join(str(c) for c in counts) + " |")
    shown = df[df["start"].isin(starts)]
    totals = [sum(v < COLLAPSED for v in by_cell(shown, r, metric)) for r in rounds]
    return [*lines, "| all | " + " | ".join(str(t) for t in totals) + " |"]

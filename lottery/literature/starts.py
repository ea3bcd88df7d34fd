"""A comparison of starts on any model: every start against the first one (per cell and per level), and
whether the LeNet-300-100 ranking of the starts (the Wijnja and Sobol' grids) carries over to this model."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import scipy.stats as sps

from lottery.literature.tables import (
    by_seed,
    coverage,
    mean,
    paper,
    pct,
    per_cell,
    remaining,
    spread,
)
from lottery.literature.verdicts import (
    P_HOLM,
    Page,
    Test,
    ci_text,
    claims_table,
    describe,
    differences,
    directional,
    equivalent,
    every,
    legend,
)
from lottery.literature.verdicts import rows as verdict_rows
from lottery.stats import ALPHA, holm

METRIC = "test_acc"
MARGIN = 0.0025  # ±0.25 pp: about one seed SD of a cell mean (stated on the page)
REFERENCE = ("wijnja2020", "sobol")
BASELINE = "xavier_normal/hash"  # sibling results folders holding LeNet-300-100's cells of the same starts


def _reference(folder: Path) -> Any:
    import pandas as pd

    tables = [pd.read_csv(p) for name in REFERENCE if (p := folder.parent / name / "results.csv").is_file()]
    if not tables:
        return None
    ref = pd.concat(tables).drop_duplicates("run" if "round" not in tables[0] else ["run", "round"])
    return ref[ref["control"] == "ticket"] if "control" in ref else ref


def _two_sided(a: dict[int, float], b: dict[int, float]) -> float:
    d = differences(a, b)
    return float(sps.ttest_1samp(d, 0.0).pvalue) if len(d) > 1 and np.std(d) > 0 else math.nan


def _pairs(df: Any, starts: list[str]) -> dict[tuple[str, str], tuple[dict, dict]]:
    cells = {s: per_cell(df[df["start"] == s], METRIC) for s in starts}
    return {(a, b): (cells[a], cells[b]) for i, a in enumerate(starts) for b in starts[i + 1 :]}


def _pair_verdicts(pairs: dict[tuple[str, str], tuple[dict, dict]]) -> dict[tuple[str, str], tuple[Test, str]]:
    """Each pair of starts, per cell: different (two-sided paired t), equivalent (TOST within the margin) or
    neither, Holm over this table's pairs (its own family: "a and b do not differ" needs the TOST)."""
    diff_p = holm([_two_sided(a, b) for a, b in pairs.values()])
    same = [equivalent(a, b, MARGIN) for a, b in pairs.values()]
    same_p = holm([t.p for t in same])
    out = {}
    for key, t, pd_, ps in zip(pairs, same, diff_p, same_p, strict=True):
        out[key] = (t, "different" if pd_ < ALPHA else "equivalent" if ps < ALPHA else "inconclusive")
    return out


@paper("starts")
def starts(df: Any) -> str:
    df = df[df["control"] == "ticket"] if "control" in df else df
    order = list(dict.fromkeys(df["start"]))
    if BASELINE in order:  # the pointwise default every other start is measured against
        order.remove(BASELINE)
        order.insert(0, BASELINE)
    model, dataset = df["model"].iloc[0], df["dataset"].iloc[0]
    rounds = sorted(int(r) for r in df["round"].unique())
    shown = sorted({rounds[int(i * (len(rounds) - 1) / 4)] for i in range(5)})  # five levels, the last included
    folder = Path(str(df.attrs.get("folder", ".")))
    ref = _reference(folder)
    common = [s for s in order if ref is not None and s in set(ref["start"])]
    here = _pairs(df, order)
    verdicts = _pair_verdicts(here)
    page = Page()
    claims: list[tuple[str, str, Test]] = []
    if len(common) > 1:
        there = _pairs(ref, common)
        differ = dict(zip(there, holm([_two_sided(a, b) for a, b in there.values()]), strict=True))
        # the pairs that differ on LeNet-300-100 (Holm over its pairs), each in its direction there
        chosen = {k: mean(there[k][0]) > mean(there[k][1]) for k, p in differ.items() if p < ALPHA}
        members = {k: directional(*here[k], up) for k, up in chosen.items()}
        t = page.claim(every(list(members.values())))
        ref_rank = sorted(common, key=lambda s: -mean(per_cell(ref[ref["start"] == s], METRIC)))
        mine = [s for s in sorted(order, key=lambda s: -mean(here_cell(df, s))) if s in common]
        claims.append((f"the LeNet-300-100 ranking of starts carries over to {model} on {dataset}",
                       f"LeNet-300-100 (Wijnja/Sobol' grids, cell means): {' > '.join(ref_rank)}; here: "
                       f"{' > '.join(mine)}. The pairs that differ on LeNet-300-100 (Holm over its "
                       f"{len(there)} pairs) must differ the same way here, each at α (intersection–union, p_holm = "
                       f"{P_HOLM}): " + "; ".join(
                           f"{a} {'>' if up else '<'} {b}: {ci_text(members[a, b])} pp here"
                           for (a, b), up in chosen.items()), t))
    page.close()

    head = ["start", "seeds", *[f"{remaining(df, r):.1f} %" for r in shown], "cell mean (%)",
            f"− {order[0]} (pp, 95 % CI)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    base = df[df["start"] == order[0]]
    for s in order:
        g = df[df["start"] == s]
        vs = "–" if s == order[0] else ci_text(describe(per_cell(g, METRIC), per_cell(base, METRIC)))
        lines.append(f"| {s} | {g['seed'].nunique()} | " + " | ".join(pct(by_seed(g, r, METRIC)) for r in shown)
                     + f" | {pct(per_cell(g, METRIC))} | {vs} |")
    ranking = sorted(order, key=lambda s: -mean(here_cell(df, s)))
    pair_lines = ["| pair | a − b per cell (pp, 95 % CI) | verdict |", "|---|---|---|"]
    pair_lines += [f"| {a} vs {b} | {ci_text(t)} | {v} |" for (a, b), (t, v) in verdicts.items()]
    rows = verdict_rows(claims, page, MARGIN)
    config = df.attrs.get("config", "the grid's config")
    sd = [spread(per_cell(df[df["start"] == s], METRIC)) for s in order]
    return "\n".join([
        f"# Starts compared on {model} / {dataset}", "",
        f"Run: `python -m lottery.compare {config}`; this page: `python -m lottery.literature starts "
        f"{folder}/results.csv --grid {config}`; the config's header gives the protocol.", "",
        coverage(df, df.attrs.get("grid_cells")), "", "![test accuracy](accuracy.png)", "",
        "Test accuracy (%) at each round's end, mean ± std over seeds; *cell mean*: each seed's mean over all its "
        f"levels (one number per cell), and its seed-paired difference from {order[0]}.", "", *lines, "",
        f"Ranking by cell mean: {' > '.join(ranking)}.", "",
        "## Which starts differ, which are the same", "",
        f"Per cell, paired by seed: *different* (two-sided paired t), *equivalent* (TOST within ±{100 * MARGIN:g} pp) "
        f"or *inconclusive* (neither), each with Holm over this table's {len(verdicts)} pairs. \"Do not differ\" "
        "needs *equivalent*; *inconclusive* says only that this n cannot tell.", "", *pair_lines, "",
        "## Does the LeNet-300-100 ranking carry over?", "",
        *(claims_table(rows) if rows else ["No LeNet-300-100 grid of these starts beside this folder."]), "",
        legend(100 * MARGIN, f"about one seed-to-seed standard deviation of a cell mean, {100 * min(sd):.2f}–"
               f"{100 * max(sd):.2f} pp here", page.size), "",
    ])


def here_cell(df: Any, start: str) -> dict[int, float]:
    return per_cell(df[df["start"] == start], METRIC)

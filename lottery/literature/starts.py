"""A comparison of starts on any model: every start against the first one (per cell and per level), and
whether the LeNet-300-100 ranking of the starts (the Wijnja and Sobol' grids) carries over to this model."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.stats as sps

from lottery.literature.frankle2019 import SPARSE_PCT, control_claims
from lottery.literature.tables import (
    by_seed,
    coverage,
    late_stops,
    mean,
    nearest_round,
    paper,
    pct,
    per_cell,
    remaining,
    spread,
)
from lottery.literature.verdicts import (
    CLAIM_CONFIDENCE,
    MARGIN,
    Page,
    Test,
    describe,
    differences,
    equivalent,
)
from lottery.literature.wording import (
    P_HOLM,
    ci_text,
    claims_table,
    legend,
)
from lottery.literature.wording import rows as verdict_rows
from lottery.stats import ALPHA, holm

# test accuracy at each round's minimum validation loss (F&C's early stopping; with 1-epoch rounds, the round's
# end); the LeNet-300-100 grids are ranked by their own pages' metric (Wijnja's round-end accuracy)
METRIC = "test_acc_at_best"
REF_METRIC = "test_acc"
DRAWS = 2000  # bootstrap draws of Kendall τ over seeds
REFERENCE = ("wijnja2020", "sobol")
BASELINE = "xavier_normal/hash"  # sibling results folders holding LeNet-300-100's cells of the same starts


def _reference(folder: Path) -> Any:
    tables = [pd.read_csv(p) for name in REFERENCE if (p := folder.parent / name / "results.csv").is_file()]
    if not tables:
        return None
    ref = pd.concat(tables).drop_duplicates("run" if "round" not in tables[0] else ["run", "round"])
    return ref[ref["control"] == "ticket"] if "control" in ref else ref


def _two_sided(a: dict[int, float], b: dict[int, float]) -> float:
    d = differences(a, b)
    return float(sps.ttest_1samp(d, 0.0).pvalue) if len(d) > 1 and np.std(d) > 0 else math.nan


def _pairs(df: Any, starts: list[str], metric: str = METRIC) -> dict[tuple[str, str], tuple[dict, dict]]:
    cells = {s: per_cell(df[df["start"] == s], metric) for s in starts}
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


def kendall(df: Any, ref: Any, starts: list[str]) -> tuple[Test, list[tuple[int, int]]]:
    """Kendall τ between the starts' ranking here and on the reference model, at matched sparsity: each start
    ranked by its per-seed mean accuracy over the levels both models share (matched by % remaining within
    15 %), with a bootstrap over seeds (resampled within each model, the same draw for every start). The
    claim's p: the share of draws with τ ≤ 0; against: the share with τ ≥ 0."""
    matched = [(r, m) for r in sorted(int(x) for x in df["round"].unique())
               if (m := nearest_round(ref, remaining(df, r))) is not None]
    here = {s: per_cell(df[df["start"] == s], METRIC, [r for r, _ in matched]) for s in starts}
    there = {s: per_cell(ref[ref["start"] == s], REF_METRIC, [m for _, m in matched]) for s in starts}
    seeds_here = sorted(set.intersection(*(set(v) for v in here.values())))
    seeds_there = sorted(set.intersection(*(set(v) for v in there.values())))
    if len(starts) < 3 or len(seeds_here) < 2 or len(seeds_there) < 2:
        return Test(math.nan, math.nan, len(seeds_here), "Kendall τ"), matched

    def tau(a: list[int], b: list[int]) -> float:
        x = [np.mean([here[s][k] for k in a]) for s in starts]
        y = [np.mean([there[s][k] for k in b]) for s in starts]
        return float(sps.kendalltau(x, y).statistic)

    rng = np.random.default_rng(0)
    draws = np.array([tau(list(rng.choice(seeds_here, len(seeds_here))), list(rng.choice(seeds_there,
                                                                                          len(seeds_there))))
                      for _ in range(DRAWS)])
    draws = draws[~np.isnan(draws)]
    low, high = np.percentile(draws, [100 * ALPHA, 100 * (1 - ALPHA)])  # matches the one-sided p
    return Test(tau(seeds_here, seeds_there), float(np.mean(draws <= 0)), len(seeds_here), "Kendall τ bootstrap",
                p_against=float(np.mean(draws >= 0)), low=float(low), high=float(high)), matched


def _controls(table: Any, page: Page) -> list[tuple[str, str, Test]]:
    """F&C's claims against reinit and random pruning for each start whose tickets have controls."""
    if "control" not in table:
        return []
    claims = []
    for start in dict.fromkeys(table.loc[table["control"] != "ticket", "start"]):
        g = table[table["start"] == start]
        ticket = g[g["control"] == "ticket"]
        sparse = [r for r in sorted(int(x) for x in ticket["round"].unique()) if remaining(ticket, r) <= SPARSE_PCT]
        if sparse:
            claims += [(f"{p} ({start})", o, t) for p, o, t in control_claims(
                ticket, {c: x for c, x in g.groupby("control") if c != "ticket"}, sparse, METRIC, page)]
    return claims


@paper("starts")
def starts(table: Any) -> str:
    df = table[table["control"] == "ticket"] if "control" in table else table
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
    if len(common) > 2:
        t, matched = kendall(df, ref, common)
        t = page.claim(t)
        claims.append((f"the LeNet-300-100 ranking of starts carries over to {model} on {dataset} (Kendall τ)",
                       f"τ = {t.diff:+.2f} over {len(common)} starts at {len(matched)} matched levels (one-sided "
                       f"95 % bootstrap lower bound over seeds {t.low:+.2f}; share of draws with τ ≤ 0, "
                       f"p_holm = {P_HOLM})", t))
    carried = []  # descriptive: the pairs that differ on LeNet-300-100 (Holm over its pairs), here
    if len(common) > 1:
        there = _pairs(ref, common, REF_METRIC)
        differ = dict(zip(there, holm([_two_sided(a, b) for a, b in there.values()]), strict=True))
        ref_rank = sorted(common, key=lambda s: -mean(per_cell(ref[ref["start"] == s], REF_METRIC)))
        mine = [s for s in sorted(order, key=lambda s: -mean(here_cell(df, s))) if s in common]
        carried = [f"LeNet-300-100 (Wijnja/Sobol' grids, cell means): {' > '.join(ref_rank)}; here: "
                   f"{' > '.join(mine)}. The pairs that differ on LeNet-300-100 (Holm over its {len(there)} pairs), "
                   "and the same difference here per cell (descriptive, 95 % CI): " + ("; ".join(
                       f"{a} − {b}: {ci_text(describe(*there[a, b]))} pp there, {ci_text(describe(*here[a, b]))} "
                       "pp here" for (a, b), p in differ.items() if p < ALPHA) or "none") + ".", ""]
    claims += _controls(table, page)
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
    pair_lines = [f"| pair | a − b per cell (pp, {100 * CLAIM_CONFIDENCE:g} % CI, as TOST) | verdict |",
                  "|---|---|---|"]
    pair_lines += [f"| {a} vs {b} | {ci_text(t)} | {v} |" for (a, b), (t, v) in verdicts.items()]
    rows = verdict_rows(claims, page, MARGIN)
    config = df.attrs.get("config", "the grid's config")
    sd = [spread(per_cell(df[df["start"] == s], METRIC)) for s in order]
    return "\n".join([
        f"# Starts compared on {model} / {dataset}", "",
        f"Run: `python -m lottery.compare {config}`; this page: `python -m lottery.literature starts "
        f"{folder}/results.csv --grid {config}`; the config's header gives the protocol.", "",
        coverage(df, df.attrs.get("grid_cells")), "", "![test accuracy](accuracy.png)", "",
        "Test accuracy (%) at each round's minimum validation loss (early stopping; with rounds of one epoch, the "
        "round's end), mean ± std over seeds; *cell mean*: each seed's mean over all its levels (one number per "
        f"cell), and its seed-paired difference from {order[0]}." + _late(table), "", *lines, "",
        f"Ranking by cell mean: {' > '.join(ranking)}.", "",
        "## Which starts differ, which are the same", "",
        f"Per cell, paired by seed: *different* (two-sided paired t), *equivalent* (TOST within ±{100 * MARGIN:g} pp) "
        f"or *inconclusive* (neither), each with Holm over this table's {len(verdicts)} pairs. \"Do not differ\" "
        "needs *equivalent*; *inconclusive* says only that this n cannot tell.", "", *pair_lines, "",
        "## The claims: does the LeNet-300-100 ranking carry over, are these winning tickets?", "",
        *carried, *(claims_table(rows) if rows else ["No LeNet-300-100 grid of these starts beside this folder, and "
                                                     "no controls."]), "",
        legend(100 * MARGIN, f"about one seed-to-seed standard deviation of a cell mean, {100 * min(sd):.2f}–"
               f"{100 * max(sd):.2f} pp here", page.size), "",
    ])


def _late(table: Any) -> str:
    """How many rows' validation loss was lowest in the round's last epoch (still improving: a lower bound)."""
    length = table.attrs.get("round_length")
    if length is None or length[0] != "epochs" or length[1] < 2:
        return ""
    what = table["control"] if "control" in table else ["ticket"] * len(table)
    counts = [(c, *late_stops(table[what == c], length)) for c in dict.fromkeys(what)]
    return (f" Rows whose validation loss was lowest in the last of the round's {length[1]} epochs (still "
            "improving when the budget ran out; their accuracy is a lower bound): "
            + "; ".join(f"{c} {k} of {n}" for c, k, n in counts) + ".")


def here_cell(df: Any, start: str) -> dict[int, float]:
    return per_cell(df[df["start"] == start], METRIC)

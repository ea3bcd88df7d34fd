"""Sobol' starts (ours and the QRNG paper's layout) against the hash, per (scheme, scale)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import scipy.stats as sps

from lottery.literature.tables import (
    COLLAPSED,
    by_seed,
    collapse_table,
    coverage,
    nearest_round,
    paper,
    pct,
    per_cell,
    remaining,
)
from lottery.literature.verdicts import (
    MARGIN,
    SEED_FREE_SOURCES,
    Page,
    Test,
    describe,
    equivalent,
    sign_test,
    smallest_winning_rate,
)
from lottery.literature.wording import (
    P_AGAINST,
    P_HOLM,
    ci_text,
    claims_table,
    legend,
    margin_reason,
)
from lottery.literature.wording import rows as verdict_rows
from lottery.stats import ALPHA, p_text

METRIC = "test_acc"
# below 3.5 % the output layer, pruned 20 % per round, loses whole digits (the Wijnja page's collapsed cells):
# a cell's summary stops there, so that it measures the start, not which cells happened to starve
STARVES_BELOW = 3.5


@paper("sobol")
def sobol(df: Any) -> str:
    df = df[df["control"] == "ticket"]
    rounds = sorted(int(r) for r in df["round"].unique())
    shown = sorted({r for t in (100, 51.2, 21.0, 6.9, 3.5) if (r := nearest_round(df, t)) is not None})
    page = Page()
    groups = [(scheme, scale, g) for (scheme, scale), g in df.groupby(["scheme", "scale"], sort=True)
              if not set(g["source"]) <= {"hash"}]  # a hash baseline no Sobol' cell has been run against yet
    last_clean = nearest_round(df, STARVES_BELOW)
    clean = [r for r in rounds if last_clean is None or r <= last_clean]
    deep = [r for r in rounds if r not in clean]
    cells, whole = {}, {}
    for scheme, scale, g in groups:
        base = g[g["source"] == "hash"]
        for source in sorted(set(g["source"]) - {"hash"}):
            h = g[g["source"] == source]
            # per cell: one number per seed (mean over its levels), so 20 correlated levels count once
            a, b = per_cell(h, METRIC, clean), per_cell(base, METRIC, clean)
            cells[scheme, scale, source] = (describe(a, b), a, b)
            whole[scheme, scale, source] = (per_cell(h, METRIC), per_cell(base, METRIC))
    # the claim's one primary test per source: more wins than chance over cells (one-sided sign test)
    wins, signs, wins_whole, pooled = {}, {}, {}, {}
    for source in sorted({k[2] for k in cells}):
        pairs = [(a, b) for k, (_, a, b) in cells.items() if k[2] == source]
        wins[source] = sum(1 for a, b in pairs for s in set(a) & set(b) if a[s] > b[s])
        wins_whole[source] = sum(1 for k, (a, b) in whole.items() if k[2] == source for s in set(a) & set(b)
                                 if a[s] > b[s])
        signs[source] = page.claim(sign_test(wins[source], sum(len(set(a) & set(b)) for a, b in pairs)))
        # every cell difference of the source, as (start, seed) units, for the size of the effect
        a_all = {(i, s): a[s] for i, (a, b) in enumerate(pairs) for s in set(a) & set(b)}
        b_all = {(i, s): b[s] for i, (a, b) in enumerate(pairs) for s in set(a) & set(b)}
        pooled[source] = equivalent(a_all, b_all, MARGIN)
    page.close()

    head = ["scheme", "scale", "source", "seeds", *[f"{remaining(df, r):.1f} %" for r in shown],
            "cell mean − hash (pp, 95 % CI)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for scheme, scale, g in groups:
        for source, h in g.groupby("source", sort=True):
            t = cells.get((scheme, scale, source))
            seeds = f"{h['seed'].nunique()}" + (" (1 start)" if source in SEED_FREE_SOURCES else "")
            lines.append(f"| {scheme} | {scale:g} | {source} | {seeds} | "
                         + " | ".join(pct(by_seed(h, r, METRIC)) for r in shown) + " | "
                         + ("–" if t is None else ci_text(t[0])) + " |")
    claims: list[tuple[str, str, Test]] = []
    for source in sorted({k[2] for k in cells}):
        mine = [k for k in cells if k[2] == source]
        sign, n = signs[source], signs[source].n
        free = (f" {source} ignores the seed: each of its {len(mine)} (scheme, scale) starts is one "
                f"initialisation and its cells differ only in data order (n = 1 start per width), so the count "
                f"speaks for these {len(mine)} starts, not for the layout in general."
                if source in SEED_FREE_SOURCES else "")
        floor = smallest_winning_rate(n, page.size)
        down_to = f" down to {remaining(df, clean[-1]):.1f} %" if deep else ""
        starved = (f" Over all {len(rounds)} levels, starved cells included, it wins {wins_whole[source]} of {n}."
                   if deep else "")
        size = pooled[source]
        same = ("equivalent to the hash within ±" + f"{100 * MARGIN:g} pp (TOST over cells, p = "
                f"{p_text(size.p)}): no advantage" + (f", though below the hash (two-sided paired t p = "
                                        f"{p_text(size.p_against)})" if size.p_against < ALPHA and size.diff < 0
                                        else "") if size.p < 0.05 else
                f"not shown equivalent within ±{100 * MARGIN:g} pp (TOST p = {p_text(size.p)})")
        claims.append((f"QRNG (Sobol') starts win 60 % of PRNG-vs-QRNG pairs ({source} vs hash)",
                       f"counted per cell (mean test accuracy over its levels{down_to}, paired by seed): {source} wins "
                       f"{wins[source]} of {n} cells ({100 * wins[source] / max(1, n):.0f} %; one-sided sign test "
                       f"p_holm = {P_HOLM}, fewer wins than chance p = {P_AGAINST}; at this n only a win rate ≥ "
                       f"{100 * floor:.0f} % would be detected). Mean cell difference {ci_text(size, 3)} pp, "
                       f"{same}.{starved}{free}",
                       sign))
    folder = str(df.attrs.get("folder", "results/sobol_quick"))
    if "quick" in Path(folder).name:
        run_line = ("Run: `python -m lottery.compare configs/compare_sobol_quick.yaml` (LeNet-300-100 on MNIST, 16 "
                    "rounds of 1 epoch, Adam 0.0012, batch 60, 20 % of every layer per round, rewind to θ0; "
                    "`compare_sobol.yaml` is the same under the full Wijnja protocol); this page: `python -m "
                    f"lottery.literature sobol {folder}/results.csv`.")
    else:
        expected = df.attrs.get("grid_cells")
        done = df[df["source"] != "hash"]["run"].nunique()
        run_line = ("Run: `python -m lottery.compare configs/compare_sobol.yaml` (the Wijnja protocol: LeNet-300-100 "
                    "on MNIST, seeds 42–52, 20 rounds of 5 epochs, Adam 0.0012, batch 60, 20 % of every layer per "
                    "round, rewind to θ0), its hash baseline being the Wijnja grid's cells: `python -m "
                    "lottery.compare configs/compare_sobol.yaml --gather results/wijnja2020/cells "
                    f"{folder}/cells`; this page: `python -m lottery.literature sobol {folder}/results.csv`. "
                    f"{done} of the grid's {expected or '?'} Sobol' cells are in; only the (scheme, scale) groups "
                    "with Sobol' cells are shown.")
    return "\n".join([
        "# Sobol' starts against the hash", "",
        run_line, "", coverage(df), "", "![test accuracy](accuracy.png)", "",
        "Test accuracy (%) at each round's end, mean ± std over seeds. `sobol`: our seeded, Owen-scrambled Sobol'; "
        "`sobol-paper`: the QRNG paper's unscrambled layout, **seed-free**: its seeds differ in batch order only, "
        "so each of its rows is one start (n = 1), and its spread is data-order noise alone. The last column is "
        "the per-cell comparison (each seed's mean over " + (f"the levels down to {remaining(df, clean[-1]):.1f} %, "
        "before the output layer starves" if deep else "all levels") + ", paired with the hash cell of the same seed).",
        "", *lines, "", "## The published claim (Miranskyy et al. 2024)", "",
        "Their setting differs: dense MLP 784-64-64-10 and a small CNN, unnormalised pixels, lr 1e-4, 30 epochs, "
        "no pruning; theirs is a win count over 120 PRNG-vs-QRNG pairs. Ours asks the lottery question: which "
        "source gives better tickets. Wins are counted per cell, one per seed, never per (seed, level) row: a "
        "cell's levels are one training run and not independent.", "",
        *claims_table(verdict_rows(claims, page, MARGIN)), "",
        legend(100 * MARGIN, margin_reason(), page.size), "",
        *(_cut_sensitivity(df, groups, clean, deep) if deep else []),
        *(_collapsed(df, groups, deep) if deep else []),
    ])


def _cut_sensitivity(df: Any, groups: list, clean: list[int], deep: list[int]) -> list[str]:
    """The per-cell comparison at other cuts than the one fixed before the data (3.5 %): wins, the one-sided
    sign test's raw p for fewer wins than chance, and the mean cell difference with its 95 % CI, per source.
    Descriptive: not in the page's family; it shows how far the verdict depends on the cut."""
    cuts = [r for r in [*clean[-4:], *deep] if r]
    head = "| source | " + " | ".join(f"to {remaining(df, r):.1f} %" for r in cuts) + " |"
    lines, holds = [head, "|---|" + "---|" * len(cuts)], {}
    for source in sorted({s for _, _, g in groups for s in g["source"]} - {"hash"}):
        row = []
        for cut in cuts:
            upto = [r for r in clean + deep if r <= cut]
            diffs = []
            for _, _, g in groups:
                a = per_cell(g[g["source"] == source], METRIC, upto)
                b = per_cell(g[g["source"] == "hash"], METRIC, upto)
                diffs += [a[s] - b[s] for s in set(a) & set(b)]
            if len(diffs) < 2:
                row.append("–")
                continue
            wins = sum(d > 0 for d in diffs)
            more = sps.binomtest(wins, len(diffs), alternative="greater").pvalue
            fewer = sps.binomtest(wins, len(diffs), alternative="less").pvalue
            if fewer < 0.05:
                holds.setdefault(source, []).append(remaining(df, cut))
            mean, half = float(np.mean(diffs)), float(sps.t.ppf(0.975, len(diffs) - 1) * sps.sem(diffs))
            row.append(f"{wins}/{len(diffs)} wins (more: p = {p_text(more)}, fewer: p = {p_text(fewer)}); "
                       f"{100 * mean:+.3f} pp [{100 * (mean - half):+.3f}, {100 * (mean + half):+.3f}]")
        lines.append(f"| {source} | " + " | ".join(row) + " |")
    where = "; ".join(f"{s}: fewer wins than chance at α for the cuts at {', '.join(f'{c:.1f}' for c in cs)} %"
                      for s, cs in holds.items()) or "no cut gives fewer wins than chance at α"
    return ["## How the per-cell verdict depends on the cut", "",
            f"The claims above stop each cell's mean at {remaining(df, clean[-1]):.1f} %, a cut chosen after cells "
            "below it were seen to collapse (the output layer starves there). The same comparison with the cut "
            "elsewhere: wins of the start over the hash cell of the same seed, the one-sided sign tests' p for "
            "more and for fewer wins than chance (raw: this table is descriptive, not part of the page's Holm "
            f"family) and the mean cell difference with its 95 % confidence interval (over cells). {where}.", "",
            *lines, ""]


def _collapsed(df: Any, groups: list, deep: list[int]) -> list[str]:
    starts = [s for _, _, g in groups for s in sorted(g["start"].unique())]
    return [f"## Collapsed cells (test accuracy below {100 * COLLAPSED:g} %)", "",
            f"Below {STARVES_BELOW:g} % the output layer, pruned 20 % per round like the others, keeps too few "
            "weights for some digits and the cell drops to ≈ 88 % (see the Wijnja page); which cells starve adds a "
            "spread unrelated to the start, so the per-cell comparison above stops before it. Counts per start "
            "and level:", "", *collapse_table(df, starts, deep, METRIC), ""]

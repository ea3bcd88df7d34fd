"""Wijnja, Wierstra & Hamburger (2020): which of 8 starts gives the best LeNet-300-100 tickets, test accuracy
at the end of every 5-epoch round."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lottery.literature.tables import (
    COLLAPSED,
    by_seed,
    collapse_table,
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
    MARGIN,
    Page,
    Test,
    at_least,
    describe,
    directional,
    equivalent,
    every,
    welch,
)
from lottery.literature.wording import (
    P_HOLM,
    ci_text,
    claims_table,
    legend,
    margin_reason,
)
from lottery.literature.wording import rows as verdict_rows

METRIC = "test_acc"
TARGETS = [100, 51.2, 21.0, 6.9, 3.5, 2.3, 1.4]
PAPER_STARTS = 8  # Xavier and Kaiming × normal and uniform; Xavier normal and uniform ×0.5 and ×2
PAIRS = [("xavier_normal", "xavier_uniform", 1.0), ("xavier_normal", "xavier_uniform", 0.5),
         ("xavier_normal", "xavier_uniform", 2.0), ("kaiming_normal", "kaiming_uniform", 1.0)]


def _measured(n: int, of: int, what: str) -> str:
    """Said when a family claim rests on part of its members (at best *partly* then)."""
    return f"; measured for {n} of the claim's {of} {what}, so it is at best partly" if n < of else ""


def _start(df: Any, scheme: str, scale: float) -> Any:
    return df[(df["scheme"] == scheme) & np.isclose(df["scale"].astype(float), scale)]


@paper("wijnja2020")
def wijnja2020(df: Any) -> str:
    df = df[df["control"] == "ticket"]
    starts = sorted(df["start"].unique())
    rounds = sorted(int(r) for r in df["round"].unique())
    levels = [(t, r) for t in TARGETS if (r := nearest_round(df, t)) is not None]
    r69, r35, r23 = nearest_round(df, 6.9), nearest_round(df, 3.5), nearest_round(df, 2.3)
    page = Page()
    group = {s: df[df["start"] == s] for s in starts}
    dense = {s: by_seed(group[s], 0, METRIC) for s in starts}
    upto = [r for r in rounds if r and r69 is not None and r <= r69]
    # each claim's one primary test, fixed before the data are read; Holm over these only
    claims: list[tuple[str, str, Test]] = []
    if upto:
        per = {s: every([at_least(by_seed(group[s], r, METRIC), dense[s], MARGIN) for r in upto],
                        summary=at_least(per_cell(group[s], METRIC, upto), dense[s], MARGIN)) for s in starts}
        t = page.claim(every(list(per.values()), PAPER_STARTS))
        claims.append(("tickets ≥ the dense network down to 6.9 %",
                       f"non-inferior within {100 * MARGIN:g} pp per seed over the levels down to "
                       f"{remaining(df, upto[-1]):.1f} %, and at each level at α, for every start (intersection–union "
                       f"over {len(starts)} starts × {len(upto)} levels, p_holm = {P_HOLM}); per start (per seed over "
                       "the levels, at each level): "
                       + ", ".join(f"{s} {ci_text(m)} pp ({'holds' if m.each else 'not'} at each)"
                                   for s, m in per.items())
                       + _measured(len(per), PAPER_STARTS, "starts"), t))
    after = r69 + 1 if r69 is not None and r69 + 1 in rounds else None
    if after is not None:
        fell = {s: directional(by_seed(group[s], after, METRIC), dense[s], False, margin=MARGIN) for s in starts}
        t = page.claim(every(list(fell.values()), PAPER_STARTS))
        claims.append(("… and fall below the dense network right after 6.9 %",
                       f"below dense at {remaining(df, after):.1f} % for every start (intersection–union, p_holm = "
                       f"{P_HOLM}): " + ", ".join(f"{s} {ci_text(m)} pp" for s, m in fell.items())
                       + _measured(len(fell), PAPER_STARTS, "starts"), t))
    xav = df[df["scheme"].str.startswith("xavier") & np.isclose(df["scale"].astype(float), 1.0)]
    kai = df[df["scheme"].str.startswith("kaiming") & np.isclose(df["scale"].astype(float), 1.0)]
    deep = [r for r in rounds if r35 is not None and r >= r35] if len(xav) and len(kai) else []
    if deep:
        def cells(g: Any) -> list[float]:  # one number per (start, seed) cell: its mean over the deep levels
            return [v for _, s in g.groupby("start") for v in per_cell(s, METRIC, deep).values()]

        t = page.claim(welch(cells(xav), cells(kai), True))
        claims.append(("below 3.5 % Xavier beats Kaiming (normal and uniform pooled, ×1)",
                       f"per cell (its mean over the {len(deep)} levels from {remaining(df, deep[0]):.1f} % down), "
                       f"Xavier − Kaiming {ci_text(t)} pp (one-sided Welch over {len(cells(xav))} and "
                       f"{len(cells(kai))} cells, p_holm = {P_HOLM})", t))
    else:
        claims.append(("below 3.5 % Xavier beats Kaiming", "Xavier or Kaiming cells not finished yet", Test(
            float("nan"), float("nan"), 0)))
    halved = [s for s in starts if "×0.5" in s and s.startswith("xavier")]
    if r23 is not None and halved and len(starts) >= 4:
        others = [o for o in starts if o not in halved]
        pairs = {(h, o): welch(list(by_seed(group[h], r23, METRIC).values()),
                               list(by_seed(group[o], r23, METRIC).values()), True) for h in halved for o in others}
        t = page.claim(every(list(pairs.values()), 2 * (PAPER_STARTS - 2)))
        means = {s: mean(by_seed(group[s], r23, METRIC)) for s in starts}
        above = sum(not np.isnan(m.p) and m.p < 0.05 for m in pairs.values())
        claims.append(("the halved Xavier variants are best at 2.3 %",
                       f"ranking at {remaining(df, r23):.1f} %: " + ", ".join(
                           f"{s} {100 * means[s]:.2f}" for s in sorted(means, key=lambda s: -means[s]))
                       + f"; each halved start above each other start (intersection–union over {len(pairs)} pairs, "
                       f"one-sided Welch, p_holm = {P_HOLM}): above at α in {above} of {len(pairs)}; "
                       f"cells collapsed below {100 * COLLAPSED:g} %: see below", t))
    measured = [(f"{a} vs {b} ×{scale:g}", _start(df, a, scale), _start(df, b, scale)) for a, b, scale in PAIRS]
    measured = [(name, ga, gb) for name, ga, gb in measured if len(ga) and len(gb)]
    if measured:
        same = {name: equivalent(per_cell(ga, METRIC), per_cell(gb, METRIC), MARGIN) for name, ga, gb in measured}
        t = page.claim(every(list(same.values()), len(PAIRS)))
        claims.append(("normal ≈ uniform (every width and both schemes)",
                       f"per cell (each seed's mean over its {len(rounds)} levels), equivalent within "
                       f"±{100 * MARGIN:g} pp (TOST) for every pair (intersection–union, p_holm = {P_HOLM}): "
                       + "; ".join(f"{n} {ci_text(m)} pp" for n, m in same.items())
                       + _measured(len(same), len(PAIRS), "pairs"), t))
    variant = _variant(df)
    deep_levels = [r for r in rounds if remaining(df, r) <= 3.6]
    shared = sorted(set(variant["start"]) & set(starts)) if variant is not None else []
    starved = {(s, r): describe(by_seed(variant[variant["start"] == s], r, METRIC), by_seed(group[s], r, METRIC))
               for s in shared for r in deep_levels}
    page.close()
    claims = verdict_rows(claims, page, MARGIN)

    head = ["start", "seeds", *[f"{remaining(df, r):.1f} %" for _, r in levels]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in starts:
        lines.append(f"| {s} | {group[s]['seed'].nunique()} | "
                     + " | ".join(pct(by_seed(group[s], r, METRIC)) for _, r in levels) + " |")
    expected = df.attrs.get("grid_cells")
    remain = (f" **{expected - df['run'].nunique()} cells remain**: rerun the grid command to continue (recorded "
              "cells are skipped)." if expected and df["run"].nunique() < expected else "")
    folder = str(df.attrs.get("folder", "results/wijnja2020"))
    config = "compare_wijnja2020_output10.yaml" if "output10" in Path(folder).name else "compare_wijnja2020.yaml"
    return "\n".join([
        "# Wijnja, Wierstra & Hamburger (2020), LeNet-300-100 on MNIST: which start gives the best tickets?", "",
        f"Run: `python -m lottery.compare configs/{config}` (the paper's protocol: 8 starts × seeds 42–52 × 20 "
        "rounds of 5 epochs, Adam 0.0012, batch 60, 20 % of every layer per round, rewind to θ0"
        + ("; **this variant prunes the output layer at 10 % per round**, F&C's rate" if "output10" in config else "")
        + f"); this page: `python -m lottery.literature wijnja2020 {folder}/results.csv"
        + (f" --grid configs/{config}" if "output10" in config else "") + "`.", "",
        coverage(df, expected) + remain, "", "![test accuracy](accuracy.png)", "",
        "Test accuracy (%) at the end of each 5-epoch round, mean ± std over seeds (42–52), at the levels the paper "
        "discusses." + _still_falling(df, starts), "", *lines, "", "## The published claims", "",
        *claims_table(claims), "", legend(100 * MARGIN, margin_reason(f"{_dense_spread(df)} here"), page.size),
        "", f"## Collapsed cells (test accuracy below {100 * COLLAPSED:g} %)", "",
        ("With the output layer at 10 % per round it keeps 135 of its 1,000 weights at 2.3 %. "
         if "output10" in config else
         "Pruning the output layer at 20 % per round leaves 23 of its 1,000 weights at 2.3 %: some digits lose every "
         "connection and the cell drops to ≈ 88 %. ") + "Counts per start and level:", "",
        *collapse_table(df, starts, deep_levels), "", *_starvation(df, variant, starved, deep_levels),
    ])


def _dense_spread(df: Any) -> str:
    sds = [spread(by_seed(g, 0, METRIC)) for _, g in df.groupby("start")]
    return f"{100 * min(sds):.2f}–{100 * max(sds):.2f} pp per start" if sds else "–"


def _still_falling(df: Any, starts: list[str]) -> str:
    """How often the validation loss was lowest in the round's last epoch (still falling when the round ended,
    so that round-end accuracy understates what the start's ticket reaches), overall and per start."""
    length = df.attrs.get("round_length")
    if length is None:
        return ""
    counts = [late_stops(df[df["start"] == start], length) for start in starts]
    late, total = sum(k for k, _ in counts), sum(n for _, n in counts)
    if not total:
        return ""
    shares = [k / n for k, n in counts if n]
    return (f" The validation loss was lowest in the round's last epoch, still falling when the round ended, in "
            f"{late} of {total} rows ({100 * late / total:.0f} %; {100 * min(shares):.0f}–{100 * max(shares):.0f} % "
            "per start): round-end accuracies are partly lower bounds.")


def _variant(df: Any) -> Any:
    """The same grid with the output layer pruned at 10 % per round, from its sibling folder (if run)."""
    folder = Path(str(df.attrs.get("folder", "")))
    path = folder.parent / "wijnja2020_output10" / "results.csv"
    if "output10" in folder.name or not path.is_file():
        return None
    table = pd.read_csv(path)
    return table[table["control"] == "ticket"] if "control" in table else table


def _starvation(df: Any, variant: Any, tests: dict[tuple[str, int], Test], levels: list[int]) -> list[str]:
    if variant is None or not tests:
        return []
    lines = ["## The output layer at 10 % per round (`compare_wijnja2020_output10.yaml`)", "",
             "The same starts and seeds with the output layer pruned at 10 % per round (F&C's rate) instead of 20 %: "
             "each cell paired with its 20 % cell (same start, same seed, same round: the hidden layers at the same "
             "density, the output layer keeping more; the level is the 20 % grid's). Test accuracy (%) and collapsed "
             f"cells (below {100 * COLLAPSED:g} %) at 20 % → at 10 %; the difference is paired by seed (mean and 95 % "
             "confidence interval, descriptive).",
             "", "| start | level | 20 % output | 10 % output | 10 % − 20 % (pp) | collapsed 20 % → 10 % |",
             "|---|---|---|---|---|---|"]
    for (start, r), t in tests.items():
        a = by_seed(df[df["start"] == start], r, METRIC)
        b = by_seed(variant[variant["start"] == start], r, METRIC)
        ca, cb = sum(v < COLLAPSED for v in a.values()), sum(v < COLLAPSED for v in b.values())
        lines.append(f"| {start} | {remaining(df, r):.1f} % | {pct(a)} | {pct(b)} | {ci_text(t)} | {ca} → {cb} |")
    return [*lines, ""]

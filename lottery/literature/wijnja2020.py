"""Wijnja, Wierstra & Hamburger (2020): which of 8 starts gives the best LeNet-300-100 tickets, test accuracy
at the end of every 5-epoch round."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lottery.literature.tables import (
    COLLAPSED,
    by_cell,
    by_seed,
    collapse_table,
    coverage,
    late_stops,
    mean,
    nearest_round,
    paper,
    pct,
    remaining,
)
from lottery.literature.verdicts import (
    AGREES,
    REFUTED,
    Page,
    Test,
    at_least,
    claims_table,
    detectable,
    directional,
    equality,
    family,
    legend,
    noninferior_paired,
    paired_t,
    tost_paired,
    welch_t,
)
from lottery.stats import p_text

METRIC = "test_acc"
MARGIN = 0.005  # ±0.5 pp for "≈" and "≥" (the seeds' spread at one level is ≈ 0.1–0.3 pp)
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
    ge = {(s, r): page.add(paired_t(by_seed(group[s], r, METRIC), dense[s])) for s in starts for r in upto}
    no_worse = {(s, r): page.add(noninferior_paired(by_seed(group[s], r, METRIC), dense[s], MARGIN))
                for s in starts for r in upto}
    after = r69 + 1 if r69 is not None and r69 + 1 in rounds else None
    below_after = {s: page.add(paired_t(by_seed(group[s], after, METRIC), dense[s])) for s in starts} if after else {}
    xav = df[df["scheme"].str.startswith("xavier") & np.isclose(df["scale"].astype(float), 1.0)]
    kai = df[df["scheme"].str.startswith("kaiming") & np.isclose(df["scale"].astype(float), 1.0)]
    deep = [r for r in rounds if r35 is not None and r >= r35] if len(xav) and len(kai) else []
    xk = {r: page.add(welch_t(list(by_cell(xav, r, METRIC)), list(by_cell(kai, r, METRIC)))) for r in deep}
    halved = [s for s in starts if "×0.5" in s and s.startswith("xavier")]
    best = {(h, o): page.add(welch_t(list(by_seed(group[h], r23, METRIC).values()),
                                     list(by_seed(group[o], r23, METRIC).values())))
            for h in halved for o in starts if o not in halved} if r23 is not None and len(starts) >= 4 else {}
    pairs = []
    for a, b, scale in PAIRS:
        ga, gb = _start(df, a, scale), _start(df, b, scale)
        if len(ga) and len(gb):
            pairs.append((f"{a} vs {b} ×{scale:g}", ga, gb))
    nu = {(name, r): (page.add(paired_t(by_seed(ga, r, METRIC), by_seed(gb, r, METRIC))),
                      page.add(tost_paired(by_seed(ga, r, METRIC), by_seed(gb, r, METRIC), MARGIN)))
          for name, ga, gb in pairs for r in rounds}
    variant = _variant(df)
    deep_levels = [r for r in rounds if remaining(df, r) <= 3.6]
    shared = sorted(set(variant["start"]) & set(starts)) if variant is not None else []
    starved = {(s, r): page.add(paired_t(by_seed(variant[variant["start"] == s], r, METRIC),
                                         by_seed(group[s], r, METRIC))) for s in shared for r in deep_levels}
    page.close()

    head = ["start", "seeds", *[f"{remaining(df, r):.1f} %" for _, r in levels]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in starts:
        lines.append(f"| {s} | {group[s]['seed'].nunique()} | "
                     + " | ".join(pct(by_seed(group[s], r, METRIC)) for _, r in levels) + " |")
    claims: list[tuple[str, str, str]] = []
    if upto:
        per = {s: family([at_least(ge[s, r], no_worse[s, r]) for r in upto]) for s in starts}
        above = sum(ge[s, r].significant() and ge[s, r].diff > 0 for s in starts for r in upto)
        below = sum(ge[s, r].significant() and ge[s, r].diff < 0 for s in starts for r in upto)
        claims.append(("tickets ≥ the dense network down to 6.9 %",
                       f"over {len(starts)} starts × {len(upto)} levels down to {remaining(df, upto[-1]):.1f} %: "
                       f"significantly above dense in {above}, below in {below} (paired t); ≥ holds (above, or "
                       f"non-inferior within {100 * MARGIN:g} pp) for "
                       + ", ".join(f"{s}: {v}" for s, v in per.items()) + _measured(len(per), PAPER_STARTS, "starts"),
                       family(list(per.values()), PAPER_STARTS)))
    if after is not None:
        verdicts = {s: directional(t, False) for s, t in below_after.items()}
        claims.append(("… and fall below the dense network right after 6.9 %",
                       f"at {remaining(df, after):.1f} %: " + ", ".join(
                           f"{s} {100 * t.diff:+.2f} pp (p = {p_text(t.p_adj)})" for s, t in below_after.items()),
                       family(list(verdicts.values()))))
    if deep:
        verdicts = [directional(xk[r], True) for r in deep]
        sd = float(np.std(by_cell(kai, deep[0], METRIC), ddof=1))
        mde = detectable(sd, min(len(by_cell(xav, deep[0], METRIC)), len(by_cell(kai, deep[0], METRIC))), page.size, 2)
        claims.append(("below 3.5 % Xavier beats Kaiming (normal and uniform pooled, ×1)",
                       "Xavier − Kaiming: " + ", ".join(f"{remaining(df, r):.1f} % {100 * xk[r].diff:+.2f} pp "
                                                        f"(p = {p_text(xk[r].p_adj)})" for r in deep)
                       + f"; significant at {sum(v == AGREES for v in verdicts)} of {len(deep)} levels (Welch); "
                       f"smallest detectable at {remaining(df, deep[0]):.1f} %: {100 * mde:.2f} pp (the spread "
                       "grows with every collapsed cell below it)", family(verdicts)))
    else:
        claims.append(("below 3.5 % Xavier beats Kaiming", "Xavier or Kaiming cells not finished yet", "not measured"))
    if best and r23 is not None:
        means = {s: mean(by_seed(group[s], r23, METRIC)) for s in starts}
        ranked = sorted(means, key=lambda s: -means[s])
        wins = sum(directional(t, True) == AGREES for t in best.values())
        losses = [(h, o) for (h, o), t in best.items() if directional(t, True) == REFUTED]
        claims.append(("the halved Xavier variants are best at 2.3 %",
                       f"ranking at {remaining(df, r23):.1f} %: " + ", ".join(f"{s} {100 * means[s]:.2f}"
                                                                             for s in ranked)
                       + f"; of {len(best)} (halved, other) pairs, halved significantly above in {wins}, below in "
                       f"{len(losses)} (Welch); cells collapsed below {100 * COLLAPSED:g} %: see below",
                       family([directional(t, True) for t in best.values()])))
    if pairs:
        per = {name: family([equality(*nu[name, r]) for r in rounds]) for name, _, _ in pairs}
        differ = {name: sum(nu[name, r][0].significant() for r in rounds) for name, _, _ in pairs}
        claims.append(("normal ≈ uniform (every width and both schemes)",
                       "; ".join(f"{n}: differs at {differ[n]} of {len(rounds)} levels, {per[n]}" for n in per)
                       + f" (paired t and TOST ±{100 * MARGIN:g} pp per level)"
                       + _measured(len(per), len(PAIRS), "pairs"),
                       family(list(per.values()), len(PAIRS))))
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
        *claims_table(claims), "", legend(100 * MARGIN),
        "", f"## Collapsed cells (test accuracy below {100 * COLLAPSED:g} %)", "",
        ("With the output layer at 10 % per round it keeps 135 of its 1,000 weights at 2.3 %. "
         if "output10" in config else
         "Pruning the output layer at 20 % per round leaves 23 of its 1,000 weights at 2.3 %: some digits lose every "
         "connection and the cell drops to ≈ 88 %. ") + "Counts per start and level:", "",
        *collapse_table(df, starts, deep_levels), "", *_starvation(df, variant, starved, deep_levels),
    ])


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
    import pandas as pd

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
             f"cells (below {100 * COLLAPSED:g} %) at 20 % → at 10 %; the difference is paired by seed (Holm over "
             "the page).",
             "", "| start | level | 20 % output | 10 % output | 10 % − 20 % (pp) | collapsed 20 % → 10 % |",
             "|---|---|---|---|---|---|"]
    for (start, r), t in tests.items():
        a = by_seed(df[df["start"] == start], r, METRIC)
        b = by_seed(variant[variant["start"] == start], r, METRIC)
        ca, cb = sum(v < COLLAPSED for v in a.values()), sum(v < COLLAPSED for v in b.values())
        lines.append(f"| {start} | {remaining(df, r):.1f} % | {pct(a)} | {pct(b)} | {100 * t.diff:+.2f} "
                     f"(p = {p_text(t.p_adj)}) | {ca} → {cb} |")
    return [*lines, ""]

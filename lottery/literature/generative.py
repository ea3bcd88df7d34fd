"""Learned starts (``vae`` local, ``ghn`` global) against Xavier normal from the hash (Harder et al. 2023)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from lottery.literature.tables import by_seed, coverage, nearest_round, paper, pct, per_cell, remaining
from lottery.literature.verdicts import (
    MARGIN,
    Page,
    Test,
    describe,
    directional,
    equivalent,
    every,
    mann_whitney_floor,
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
ALIKE = 0.5  # seed-to-seed correlation of first layers above which a start's seeds are nearly one start


def _read(folder: Path, name: str) -> Any:
    path = folder / name
    return pd.read_csv(path) if path.is_file() else None


@paper("generative")
def generative(df: Any) -> str:
    df = df[df["control"] == "ticket"]
    base = df[df["source"] == "hash"]
    learned = sorted(set(df["source"]) - {"hash"})
    rounds = sorted(int(r) for r in df["round"].unique())
    shown = sorted({r for t in (100, 51.2, 21.0, 6.9, 3.5) if (r := nearest_round(df, t)) is not None})
    folder = Path(str(df.attrs.get("folder", ".")))
    init, early = _read(folder, "at_init.csv"), _read(folder, "early.csv")
    page = Page()
    src = {s: df[df["source"] == s] for s in learned}
    # each claim's one primary test, fixed before the data are read; Holm over these only
    claims: list[tuple[str, str, Test]] = []
    if "vae" in src:
        same = {r: equivalent(by_seed(src["vae"], r, METRIC), by_seed(base, r, METRIC), MARGIN) for r in rounds}
        t = page.claim(every(list(same.values())))
        differ = sum(not math.isnan(m.p_against) and m.p_against < 0.05 for m in same.values())
        claims.append(("local (VAE) starts: no significant difference from pointwise starts",
                       f"vae − xavier_normal equivalent within ±{100 * MARGIN:g} pp (TOST) at every level "
                       f"(intersection–union, p_holm = {P_HOLM}): equivalent at α at "
                       f"{sum(m.p < 0.05 for m in same.values())} of {len(rounds)} levels, different at α at "
                       f"{differ} (paired by seed)", t))
    if "ghn" in src:
        first = page.claim(directional(by_seed(src["ghn"], rounds[0], METRIC), by_seed(base, rounds[0], METRIC), True))
        claims.append(("global (GHN) starts converge faster early on",
                       f"after the first epoch (dense, round 0): ghn − xavier_normal {ci_text(first)} pp, one-sided "
                       f"p_holm = {P_HOLM}", first))
        if early is not None:
            hash_start, ghn_start = base["start"].iloc[0], src["ghn"]["start"].iloc[0]

            def at(start: str, step: int) -> dict[int, float]:
                g = early[(early["start"] == start) & (early["step"] == step)]
                return {int(s): float(v) for s, v in zip(g["seed"], g["test_acc"], strict=True)}

            steps = {s: directional(at(ghn_start, s), at(hash_start, s), True)
                     for s in sorted(early["step"].unique()) if s > 0}
            t = page.claim(every(list(steps.values())))
            claims.append(("global (GHN) starts lead during the first steps",
                           "ghn − xavier_normal at every step (intersection–union, p_holm = "
                           f"{P_HOLM}): " + ", ".join(f"step {s} {100 * m.diff:+.1f} pp" for s, m in
                                                              steps.items()), t))
        higher = page.claim(directional(per_cell(src["ghn"], METRIC), per_cell(base, METRIC), True))
        claims.append(("global (GHN) starts reach higher accuracy",
                       f"per cell (each seed's mean over its {len(rounds)} levels): ghn − xavier_normal "
                       f"{ci_text(higher)} pp, one-sided p_holm = {P_HOLM}", higher))
    page.close()
    rows = verdict_rows(claims, page, MARGIN)

    head = ["start", "seeds", *[f"{remaining(df, r):.1f} %" for r in shown]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for start, g in df.groupby("start", sort=False):
        lines.append(f"| {start} | {g['seed'].nunique()} | " + " | ".join(pct(by_seed(g, r, METRIC)) for r in shown)
                     + " |")
    notes = []
    init_lines = []
    if init is not None:
        corr = "first_layer_corr_previous_seed"
        init_lines = ["Before any training (`python scripts/starts_at_init.py configs/compare_generative.yaml`), "
                      "test accuracy (%) and loss, mean ± std over the seeds, and how alike the networks of "
                      "consecutive seeds are (correlation of their first weight matrices; the paper's "
                      "ensemble-diversity concern):", "",
                      "| start | seeds | accuracy | loss | seed-to-seed correlation |", "|---|---|---|---|---|"]
        for start, g in init.groupby("start", sort=False):
            c = g[corr].mean() if corr in g and g[corr].notna().any() else float("nan")
            init_lines.append(f"| {start} | {len(g)} | {pct(list(g['test_acc']))} | "
                              f"{g['test_loss'].mean():.3f} ± {g['test_loss'].std(ddof=1):.3f} | "
                              f"{'–' if c != c else f'{c:.3f}'} |")
            if c == c and c > ALIKE:
                notes.append(f"- {start}: its seeds barely vary (first layers correlate {c:.2f} between seeds), so "
                             f"its {len(g)} seeds are close to one start trained on {len(g)} data orders; its n "
                             "counts data orders more than independent starts.")
        init_lines.append("")
    n_seeds = base["seed"].nunique()
    floor = mann_whitney_floor(n_seeds, n_seeds, page.size)
    notes += [f"- {floor}"] if floor else []
    early_lines = []
    if early is not None:
        cols = sorted(early["step"].unique())
        early_lines = ["The first steps of training (`python scripts/early_convergence.py "
                       "configs/compare_generative.yaml`: the grid's optimiser, batch size and seeds, no pruning), "
                       "test accuracy (%), mean ± std over the seeds:", "",
                       "| start | " + " | ".join(f"step {s}" for s in cols) + " |", "|---|" + "---|" * len(cols)]
        for start, g in early.groupby("start", sort=False):
            early_lines.append(f"| {start} | " + " | ".join(pct(list(g[g["step"] == s]["test_acc"])) for s in cols)
                               + " |")
        early_lines.append("")
    per_level = ["| start | " + " | ".join(f"{remaining(df, r):.1f} %" for r in shown) + " |",
                 "|---|" + "---|" * len(shown)]
    per_level += [f"| {s} | " + " | ".join(ci_text(describe(by_seed(src[s], r, METRIC), by_seed(base, r, METRIC)))
                                          for r in shown) + " |" for s in learned]
    return "\n".join([
        "# Learned starts: a VAE (local) and a hypernetwork (global) against Xavier normal", "",
        "Run: `python -m lottery.compare configs/compare_generative.yaml` (LeNet-300-100 on MNIST, 16 rounds of 1 "
        "epoch, Adam 0.0012, batch 60, 20 % of every layer per round, rewind to θ0; the config says how the two "
        "generators in `generators/` were fitted); this page: `python -m lottery.literature generative "
        "results/generative/results.csv`.", "", coverage(df, df.attrs.get("grid_cells")), "",
        "![test accuracy](accuracy.png)", "", *init_lines, *early_lines,
        "Test accuracy (%) at each round's end, mean ± std over seeds:", "", *lines, "",
        "## The published claims (Harder et al. 2023, \"From Pointwise to Powerhouse\")", "",
        "Their setting differs: CIFAR-10/100 and ImageNet-scale networks, a pretrained GHN-2, no pruning. Ours is "
        "the lottery question on LeNet-300-100: does the learned start change the tickets at each level.", "",
        *claims_table(rows), "", legend(100 * MARGIN, margin_reason(), page.size), "",
        *(["Caveats:", "", *notes, ""] if notes else []),
        "Each learned start − xavier_normal (pp), paired by seed: mean and 95 % confidence interval (descriptive):",
        "", *per_level, "",
    ])

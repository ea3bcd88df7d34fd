"""Learned starts (``vae`` local, ``ghn`` global) against Xavier normal from the hash (Harder et al. 2023)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lottery.literature.tables import by_seed, coverage, nearest_round, paper, pct, remaining
from lottery.literature.verdicts import (
    AGREES,
    NOT_DETECTED,
    Page,
    claims_table,
    detectable,
    directional,
    equality,
    family,
    legend,
    mann_whitney_floor,
    paired_t,
    tost_paired,
)
from lottery.stats import p_text

METRIC = "test_acc"
MARGIN = 0.005  # ±0.5 pp for "no difference"
ALIKE = 0.5  # seed-to-seed correlation of first layers above which a start's seeds are nearly one start


def _read(folder: Path, name: str) -> Any:
    import pandas as pd

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
    tests = {s: {r: page.add(paired_t(by_seed(src[s], r, METRIC), by_seed(base, r, METRIC))) for r in rounds}
             for s in learned}
    same = ({r: page.add(tost_paired(by_seed(src["vae"], r, METRIC), by_seed(base, r, METRIC), MARGIN)) for r in rounds}
            if "vae" in src else {})
    steps = []
    if early is not None and "ghn" in src:
        hash_start, ghn_start = base["start"].iloc[0], src["ghn"]["start"].iloc[0]

        def at(start: str, step: int) -> dict[int, float]:
            g = early[(early["start"] == start) & (early["step"] == step)]
            return {int(s): float(v) for s, v in zip(g["seed"], g["test_acc"], strict=True)}

        steps = [(s, page.add(paired_t(at(ghn_start, s), at(hash_start, s)))) for s in sorted(early["step"].unique())
                 if s > 0]
    page.close()

    head = ["start", "seeds", *[f"{remaining(df, r):.1f} %" for r in shown]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for start, g in df.groupby("start", sort=False):
        lines.append(f"| {start} | {g['seed'].nunique()} | " + " | ".join(pct(by_seed(g, r, METRIC)) for r in shown)
                     + " |")
    claims: list[tuple[str, str, str]] = []
    if "vae" in tests:
        verdicts = [equality(tests["vae"][r], same[r]) for r in rounds]
        differ = sum(tests["vae"][r].significant() for r in rounds)
        claims.append(("local (VAE) starts: no significant difference from pointwise starts",
                       f"vae vs xavier_normal: differs at {differ} of {len(rounds)} levels, equivalent within "
                       f"±{100 * MARGIN:g} pp (TOST) at {sum(v == AGREES for v in verdicts)} (paired by seed)",
                       family(verdicts)))
    if "ghn" in tests:
        first = tests["ghn"][rounds[0]]
        a, b = by_seed(src["ghn"], rounds[0], METRIC), by_seed(base, rounds[0], METRIC)
        sd = float(np.std([a[k] - b[k] for k in set(a) & set(b)], ddof=1)) if len(set(a) & set(b)) > 1 else 0.0
        v = directional(first, True)
        mde = f"; smallest detectable at n = {first.n}: {100 * detectable(sd, first.n, page.size):.2f} pp" \
            if v == NOT_DETECTED else ""
        claims.append(("global (GHN) starts converge faster early on",
                       f"after the first epoch (dense, round 0): ghn {100 * first.diff:+.2f} pp vs xavier_normal, "
                       f"p = {p_text(first.p_adj)}{mde}", v))
        if steps:
            verdicts = [directional(t, True) for _, t in steps]
            claims.append(("global (GHN) starts lead during the first steps",
                           "ghn − xavier_normal: " + ", ".join(f"step {s} {100 * t.diff:+.1f} pp" for s, t in steps)
                           + "; significant at steps "
                           + (", ".join(str(s) for s, t in steps if t.significant()) or "none"), family(verdicts)))
        verdicts = [directional(tests["ghn"][r], True) for r in rounds]
        above = sum(v == AGREES for v in verdicts)
        claims.append(("global (GHN) starts reach higher accuracy",
                       f"ghn significantly above xavier_normal at {above} of {len(rounds)} levels, below at "
                       f"{sum(tests['ghn'][r].significant() for r in rounds) - above}", family(verdicts)))
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
    detail = [f"- {s} {'above' if t.diff > 0 else 'below'} xavier_normal by {100 * abs(t.diff):.2f} pp at "
              f"{remaining(df, r):.1f} %: paired t p_holm = {p_text(t.p_adj)}"
              for s in learned for r, t in tests[s].items() if t.significant()]
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
        *claims_table(claims), "", legend(100 * MARGIN), "", *(["Caveats:", "", *notes, ""] if notes else []),
        "Significant differences (paired by seed, Holm over the page):", "",
        *(detail or ["- None after Holm's correction."]), "",
    ])

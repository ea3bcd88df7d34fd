"""Frankle & Carbin (2019), LeNet-300-100 on MNIST: the ticket against its random reinitialisation and random
pruning on its own masks, and against the dense network, at each level."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

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
    AGREES,
    CONTRADICTED,
    NOT_DETECTED,
    NOT_MEASURED,
    PARTLY,
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
)
from lottery.pruning.controls import CONTROLS
from lottery.stats import p_text

METRIC = "test_acc_at_best"  # F&C plot test accuracy at the early-stopping (minimum validation loss) iteration
MARGIN = 0.005  # ±0.5 pp: what "back to the dense accuracy" is taken to mean (dense seeds spread ≈ 0.2 pp)
SPARSE_PCT = 21.5  # the levels "≤ 21 %" of F&C's claims
UNTIL_29 = "winning tickets stay at or above the dense accuracy down to ≈ 2.9 % and fall below it only after"
HOLDS_PCT = 2.85  # "winning tickets [fall below dense] only below ≈ 2.9 %": the levels from 2.9 % up hold


def _levels_claim(tests: dict[int, Test], sparse: list[int], expect_positive: bool) -> tuple[str, str]:
    verdicts = [directional(tests[r], expect_positive) for r in sparse]
    hits = sum(v == AGREES for v in verdicts)
    if max(tests[r].n for r in sparse) < 2:
        return f"no test at n = 1 ({len(sparse)} levels ≤ 21 %)", family(verdicts)
    return f"{hits} of {len(sparse)} levels ≤ 21 % (paired t over seeds, Holm over the page)", family(verdicts)


def _p(p: float, n: int) -> str:
    """A p-value as the page prints it; none exists at one seed, nor when every seed's difference is exactly 0
    (round 0, where a control is the dense network itself)."""
    if not math.isnan(p):
        return f"p = {p_text(p)}"
    return "no test at n = 1" if n < 2 else "no test: equal in every seed"


def _pn(p: float, n: int) -> str:
    """The p-value and the number of seeds it rests on ("no test at n = 1" already says n)."""
    return _p(p, n) if n < 2 else f"{_p(p, n)}, n = {n}"


def _missing(test: Test, sd: float, page: Page) -> str:
    return f"; smallest detectable at n = {test.n}: {100 * detectable(sd, test.n, page.size):.2f} pp"


def _budget(groups: dict[str, Any], sparse: list[int], length: tuple[str, int] | None, full: bool) -> list[str]:
    """The early-stopping figures, and how often a treatment stopped at the round's end (its best validation
    loss came with the budget's last evaluations: it was still improving, its accuracy a lower bound)."""
    unit = "iteration" if full else "epoch"
    out = ["## How fast they learn, and whether the budget sufficed", "",
           f"![early-stopping {unit}](early_stop.png)", "",
           f"Early-stopping {unit} (minimum validation loss) within each round, mean ± std over seeds (F&C's "
           "Figure 4)."]
    if length is not None:
        n = length[1]
        end = f"the last tenth of its {n:,} iterations" if length[0] == "steps" else f"the last of its {n} epochs"
        counts = []
        for name, g in groups.items():
            k, total = late_stops(g, length)
            k_sparse, sparse_total = late_stops(g[g["round"].isin(sparse)], length)
            counts.append(f"{name} {k} of {total} ({k_sparse} of {sparse_total} at ≤ 21 %)")
        out[-1] += (f" Rows whose early stopping fell at the round's end ({end}) were still improving when the "
                    f"budget ran out, so their accuracy is a lower bound; per (seed, level) row: {'; '.join(counts)}.")
    if full:
        out += ["", "![test accuracy during training](iterations.png)", "",
                "Test accuracy during training at 100, 51.3, 21.1, 7.0, 3.6 and 1.9 % remaining (F&C's Figure 3), "
                "mean over seeds, a point every 1,000 iterations."]
    return out


def _until_29(ticket: Any, vs_dense: dict[int, Test], no_worse: dict[int, Test], after: list[int]) -> tuple[str, ...]:
    """Both halves of F&C's claim: at or above dense down to 2.9 % (above, or non-inferior within the margin, at
    every level) and below it after (significantly, at every level below 2.9 %)."""
    holds = sorted(no_worse)
    kept = [at_least(vs_dense[r], no_worse[r]) for r in holds]
    if max(vs_dense[r].n for r in holds) < 2:
        return (UNTIL_29, f"no test at n = 1 ({len(holds)} levels from 2.9 % up)", NOT_MEASURED)
    said = (f"≥ dense (significantly above, or non-inferior within ±{100 * MARGIN:g} pp) at "
            f"{sum(v == AGREES for v in kept)} of {len(holds)} levels down to {remaining(ticket, holds[-1]):.1f} %")
    if after:
        fell = family([directional(vs_dense[r], False) for r in after])
        said += "; below 2.9 %: " + ", ".join(f"{100 * vs_dense[r].diff:+.2f} pp at {remaining(ticket, r):.1f} % "
                                              f"({_pn(vs_dense[r].p_adj, vs_dense[r].n)})" for r in after)
        verdict = family([family(kept), fell])
    else:  # half a claim checked is not the claim: at best partly
        said += "; the grid has no level below 2.9 %, so the fall is not measured"
        verdict = PARTLY if family(kept) == AGREES else family(kept)
    return UNTIL_29, said, verdict


def _seed_counts(groups: dict[str, Any], names: tuple[str, ...]) -> str:
    """Said when the columns rest on different seeds (cells remain): a difference is over the seeds both have."""
    seeds = {name: groups[name]["seed"].nunique() for name in names}
    if len(set(seeds.values())) < 2:
        return ""
    return (" Seeds per column: " + ", ".join(f"{name} {n}" for name, n in seeds.items()) + "; each difference is "
            "over the seeds both of its columns have, so it need not equal the difference of the column means.")


@paper("frankle2019")
def frankle2019(df: Any) -> str:
    groups = {c: g for c, g in df.groupby("control")}
    ticket = groups.get("ticket")
    if ticket is None:
        return "# Frankle & Carbin (2019)\n\nNo ticket (IMP) cells in the table yet.\n"
    full = "full" in Path(str(df.attrs.get("folder", ""))).name
    rounds = sorted(int(r) for r in ticket["round"].unique())
    dense = by_seed(ticket, 0, METRIC)
    controls = [c for c in CONTROLS if c in groups]
    sparse = [r for r in rounds if remaining(ticket, r) <= SPARSE_PCT]
    page = Page()
    # every test shown on the page, raw p first; one Holm family over all of them
    vs_dense = {r: page.add(paired_t(by_seed(ticket, r, METRIC), dense)) for r in rounds if r}
    vs_control = {c: {r: page.add(paired_t(by_seed(ticket, r, METRIC), by_seed(groups[c], r, METRIC)))
                      for r in rounds} for c in controls}
    r135, r36, r21 = nearest_round(ticket, 13.5), nearest_round(ticket, 3.6), nearest_round(ticket, 21.1)
    above_03 = (page.add(paired_t(by_seed(ticket, r135, METRIC), dense, shift=0.003)) if r135 else None)
    back = page.add(tost_paired(by_seed(ticket, r36, METRIC), dense, MARGIN)) if r36 is not None else None
    holds = [r for r in rounds if r and remaining(ticket, r) >= HOLDS_PCT]
    no_worse = {r: page.add(noninferior_paired(by_seed(ticket, r, METRIC), dense, MARGIN)) for r in holds}
    reinit_dense = ({r: page.add(paired_t(by_seed(groups["reinit"], r, METRIC), dense)) for r in rounds if r}
                    if "reinit" in groups else {})
    # against F&C's "reinit falls below dense from ≈ 21 %": reinit not below dense by the margin or more
    reinit_holds = (page.add(noninferior_paired(by_seed(groups["reinit"], r21, METRIC), dense, MARGIN))
                    if "reinit" in groups and r21 is not None else None)
    stop = "best_step" if full else "best_epoch"
    faster = (page.add(paired_t(per_cell(ticket, stop, sparse), per_cell(groups["reinit"], stop, sparse)))
              if "reinit" in groups and sparse else None)
    page.close()

    head = ["round", "% remaining", "ticket", *controls, "ticket − dense (pp)"]
    head += [f"ticket − {c} (pp)" for c in controls]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rounds:
        row = [str(r), f"{remaining(ticket, r):.1f}", pct(by_seed(ticket, r, METRIC))]
        row += [pct(by_seed(groups[c], r, METRIC)) for c in controls]
        cells = [vs_dense.get(r)] + [vs_control[c][r] for c in controls]
        row += ["–" if t is None else f"{100 * t.diff:+.2f} ({_p(t.p_adj, t.n)})" for t in cells]
        lines.append("| " + " | ".join(row) + " |")

    sd_dense = spread(dense)
    claims: list[tuple[str, str, str]] = []
    if above_03 is not None and r135 is not None:
        v = directional(above_03, True, 0.003)
        extra = _missing(above_03, sd_dense, page) if v == NOT_DETECTED else ""
        claims.append(("tickets beat the dense network by > 0.3 pp at 13.5 %",
                       f"{100 * above_03.diff:+.2f} pp at {remaining(ticket, r135):.1f} % (paired t of Δ = 0.3 pp: "
                       f"{_pn(above_03.p_adj, above_03.n)}){extra}", v))
    if back is not None:  # set exactly when the grid has a level near 3.6 %
        t = vs_dense[r36]
        v = equality(t, back)
        claims.append((f"tickets are back to the dense accuracy at ≈ 3.6 % (taken as: within ±{100 * MARGIN:g} pp)",
                       f"{100 * t.diff:+.2f} pp at {remaining(ticket, r36):.1f} % (paired t {_p(t.p_adj, t.n)}; "
                       f"TOST {_pn(back.p_adj, t.n)})"
                       + ("; significantly different, so not back to it" if v != AGREES and t.significant() else ""),
                       v))
    if holds:
        claims.append(_until_29(ticket, vs_dense, no_worse, [r for r in rounds if r and r not in holds]))
    if reinit_dense and r21 is not None:
        t = reinit_dense[r21]
        below = [r for r in rounds if r and directional(reinit_dense[r], False) == AGREES]
        first = (f"; first significantly below dense at {remaining(ticket, below[0]):.1f} %" if below
                 else "; never significantly below dense" if t.n >= 2 else "")
        v = directional(t, False, against=reinit_holds)
        extra = _missing(t, sd_dense, page) if v == NOT_DETECTED else ""
        if reinit_holds is not None and not math.isnan(reinit_holds.p_adj):
            extra += (f"; non-inferior within {100 * MARGIN:g} pp: {_pn(reinit_holds.p_adj, reinit_holds.n)}"
                      + (", so the data argue against the claim" if v == CONTRADICTED else ""))
        claims.append(("random reinitialisation falls below the dense network from ≈ 21 %",
                       f"reinit {100 * t.diff:+.2f} pp vs dense at {remaining(ticket, r21):.1f} % "
                       f"({_pn(t.p_adj, t.n)}){first}{extra}", v))
    for c, name in (("reinit", "its random reinitialisation"), ("random_prune", "random pruning at the same "
                                                                                "layer-wise sparsity")):
        if c in groups and sparse:
            text, v = _levels_claim(vs_control[c], sparse, True)
            said = text if text.startswith("no test") else f"significantly above at {text}"
            claims.append((f"at ≤ 21 % remaining the ticket beats {name}", said, v))
    if faster is not None:
        unit, form = ("iteration", ",.0f") if full else ("epoch", ".1f")
        reinit_cells = per_cell(groups["reinit"], stop, sparse)  # the ticket's mean over the same (paired) seeds
        paired_ticket = {k: v for k, v in per_cell(ticket, stop, sparse).items() if k in reinit_cells}
        claims.append(("tickets learn faster (earlier early-stopping iteration) than reinitialised ones",
                       f"mean early-stopping {unit} at ≤ 21 % (one number per seed): ticket "
                       f"{mean(paired_ticket):{form}}, reinit {mean(reinit_cells):{form}} (paired t: "
                       f"{_pn(faster.p_adj, faster.n)})"
                       + ("" if full else "; 5-epoch rounds, so coarse"),
                       directional(faster, False)))
    expected = df.attrs.get("grid_cells")
    budget = ("**50K iterations per round** (F&C's budget), validation every 100 iterations" if full else
              "**5 epochs per round** (Wijnja et al.'s budget) instead of 50K iterations (≈ 55 epochs), which would "
              "take 11× the compute")
    folder = str(df.attrs.get("folder", "results/frankle2019"))
    config = "compare_frankle2019_full.yaml" if full else "compare_frankle2019.yaml"
    return "\n".join([
        "# Frankle & Carbin (2019), LeNet-300-100 on MNIST: tickets and their controls", "",
        f"Run: `python -m lottery.compare configs/{config}`; this page: `python -m lottery.literature frankle2019 "
        f"{folder}/results.csv{f' --grid configs/{config}' if full else ''}`. Protocol: F&C's (Adam 1.2e-3, "
        "batch 60, Gaussian Glorot, 20 % per round, output "
        "layer 10 %, rewind to θ0, early stopping at the minimum validation loss on 5,000 held-out images) with "
        f"{budget}: our dense networks reach {pct(dense)} %.", "",
        coverage(df, expected) + (f" **{expected - df['run'].nunique()} cells remain**: run them seed by seed (a "
                                  "ticket, then its controls, which need its masks; see the config)."
                                  if expected and df["run"].nunique() < expected else ""), "",
        "![test accuracy at early stopping](accuracy_at_best.png)", "",
        "Test accuracy (%) at each round's early-stopping point (minimum validation loss), mean ± std over seeds. "
        "Controls train on the ticket's own masks, level by level (`prune.masks_from`), with the ticket's seeds, "
        "so every difference is paired by seed (n = seeds)." + _seed_counts(groups, ("ticket", *controls)), "",
        *lines, "", "## The published claims", "", *claims_table(claims), "", legend(100 * MARGIN), "",
        *_budget({c: groups[c] for c in ("ticket", *controls)}, sparse, df.attrs.get("round_length"), full), "",
    ])

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
    MARGIN,
    Page,
    Test,
    at_least,
    describe,
    directional,
    equivalent,
    every,
)
from lottery.literature.wording import (
    P_HOLM,
    ci_text,
    claims_table,
    legend,
    margin_reason,
)
from lottery.literature.wording import rows as verdict_rows
from lottery.pruning.controls import CONTROLS

METRIC = "test_acc_at_best"  # F&C plot test accuracy at the early-stopping (minimum validation loss) iteration
SPARSE_PCT = 21.5  # the levels "≤ 21 %" of F&C's claims
UNTIL_29 = "winning tickets stay at or above the dense accuracy down to ≈ 2.9 % and fall below it only after"
HOLDS_PCT = 2.85  # "winning tickets [fall below dense] only below ≈ 2.9 %": the levels from 2.9 % up hold


def _pn(t: Test) -> str:
    """A claim's Holm-adjusted p and the seeds it rests on."""
    if math.isnan(t.p):
        return "no test at n = 1" if t.n < 2 else "no test: equal in every seed"
    return f"p_holm = {P_HOLM}, n = {t.n}"


def _levels(ticket: Any, tests: dict[int, Test]) -> str:
    """Each level's endpoint with its 90 % CI (its ends are the one-sided tests' bounds at α), and where the
    claim fails at α (the members of an IUT)."""
    held = [r for r, t in tests.items() if not math.isnan(t.p) and t.p < 0.05]
    return (f"holds at α at {len(held)} of {len(tests)} levels; weakest at "
            f"{remaining(ticket, max(tests, key=lambda r: tests[r].p if not math.isnan(tests[r].p) else 2)):.1f} % "
            f"({ci_text(max(tests.values(), key=lambda t: t.p if not math.isnan(t.p) else 2))} pp)")


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


def control_claims(ticket: Any, groups: dict[str, Any], sparse: list[int], metric: str,
                   page: Page) -> list[tuple[str, str, Test]]:
    """F&C's winning-ticket claims against the controls trained on the ticket's masks (those in ``groups``):
    the per-seed mean over the levels ≤ 21 % (the endpoint), and above at each level at α."""
    claims = []
    for c, name in (("reinit", "its random reinitialisation"), ("random_prune", "random pruning at the same "
                                                                                "layer-wise sparsity")):
        if c in groups:
            members = {r: directional(by_seed(ticket, r, metric), by_seed(groups[c], r, metric), True,
                                      margin=MARGIN) for r in sparse}
            t = page.claim(every(list(members.values()), summary=directional(
                per_cell(ticket, metric, sparse), per_cell(groups[c], metric, sparse), True, margin=MARGIN)))
            claims.append((f"at ≤ 21 % remaining the ticket beats {name}",
                           f"per seed over the levels ≤ 21 % {ci_text(t)} pp ({_pn(t)}), and above at each level at "
                           f"α: {_levels(ticket, members)}", t))
    return claims


def _until_29(ticket: Any, page: Page, dense: dict[int, float], rounds: list[int]) -> tuple[str, str, Test]:
    """Both halves of F&C's claim, one intersection–union test: at or above dense (non-inferior within the
    margin) at every level down to 2.9 %, and significantly below it at every level after."""
    holds = [r for r in rounds if r and remaining(ticket, r) >= HOLDS_PCT]
    after = [r for r in rounds if r and r not in holds]
    kept = {r: at_least(by_seed(ticket, r, METRIC), dense, MARGIN) for r in holds}
    fell = {r: directional(by_seed(ticket, r, METRIC), dense, False, margin=MARGIN) for r in after}
    halves = [every(list(kept.values()), summary=at_least(per_cell(ticket, METRIC, holds), dense, MARGIN))]
    if fell:
        halves.append(every(list(fell.values()), summary=directional(per_cell(ticket, METRIC, after), dense, False,
                                                                      margin=MARGIN)))
    test = page.claim(every(halves, named=2))
    said = (f"non-inferior within {100 * MARGIN:g} pp per seed over the levels down to "
            f"{remaining(ticket, holds[-1]):.1f} % ({ci_text(halves[0])} pp) and at each level at α: "
            f"{_levels(ticket, kept)}")
    if fell:
        said += f"; below dense after 2.9 %: per seed {ci_text(halves[1])} pp; " + ", ".join(
            f"{ci_text(t)} pp at {remaining(ticket, r):.1f} %" for r, t in fell.items())
    else:  # half a claim checked is not the claim: at best partly
        said += "; the grid has no level below 2.9 %, so the fall is not measured"
    return UNTIL_29, f"{said} (intersection–union, {_pn(test)})", test


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
    r135, r36, r21 = nearest_round(ticket, 13.5), nearest_round(ticket, 3.6), nearest_round(ticket, 21.1)
    # each claim's one primary test, fixed before the data are read; Holm over these only
    claims: list[tuple[str, str, Test]] = []
    if r135 is not None:
        t = page.claim(directional(by_seed(ticket, r135, METRIC), dense, True, 0.003))
        claims.append(("tickets beat the dense network by > 0.3 pp at 13.5 %",
                       f"{ci_text(t)} pp at {remaining(ticket, r135):.1f} % (one-sided paired t of Δ > 0.3 pp: "
                       f"{_pn(t)})", t))
    if r36 is not None:
        t = page.claim(equivalent(by_seed(ticket, r36, METRIC), dense, MARGIN))
        claims.append((f"tickets are back to the dense accuracy at ≈ 3.6 % (taken as: within ±{100 * MARGIN:g} pp)",
                       f"{ci_text(t)} pp at {remaining(ticket, r36):.1f} % (TOST: {_pn(t)})", t))
    if any(r and remaining(ticket, r) >= HOLDS_PCT for r in rounds):
        claims.append(_until_29(ticket, page, dense, rounds))
    if "reinit" in groups and r21 is not None:
        # the claim names where the fall begins: its endpoint is that level, its margin the smallest fall meant
        t = page.claim(directional(by_seed(groups["reinit"], r21, METRIC), dense, False, margin=MARGIN))
        each = {r: directional(by_seed(groups["reinit"], r, METRIC), dense, False) for r in sparse if r}
        below = [r for r, m in each.items() if not math.isnan(m.p) and m.p < 0.05]
        claims.append(("random reinitialisation falls below the dense network from ≈ 21 %",
                       f"reinit − dense {ci_text(t)} pp at {remaining(ticket, r21):.1f} % (one-sided paired t, "
                       f"{_pn(t)}); below at α (raw, descriptive) at {len(below)} of {len(each)} levels ≤ 21 %"
                       + (f", first at {remaining(ticket, below[0]):.1f} %" if below else ""), t))
    if sparse:
        claims += control_claims(ticket, groups, sparse, METRIC, page)
    stop = "steps_to_best" if full else "epochs_to_best"
    if "reinit" in groups and sparse:
        reinit_cells = per_cell(groups["reinit"], stop, sparse)
        paired_ticket = {k: v for k, v in per_cell(ticket, stop, sparse).items() if k in reinit_cells}
        t = page.claim(directional(paired_ticket, reinit_cells, False))
        unit, form = ("iteration", ",.0f") if full else ("epoch", ".1f")
        claims.append(("tickets learn faster (earlier early-stopping iteration) than reinitialised ones",
                       f"mean early-stopping {unit} at ≤ 21 % (one number per seed): ticket "
                       f"{mean(paired_ticket):{form}}, reinit {mean(reinit_cells):{form}} (one-sided paired t: "
                       f"{_pn(t)})" + ("" if full else "; 5-epoch rounds, so coarse"), t))
    page.close()

    head = ["round", "% remaining", "ticket", *controls, "ticket − dense (pp)"]
    head += [f"ticket − {c} (pp)" for c in controls]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rounds:
        row = [str(r), f"{remaining(ticket, r):.1f}", pct(by_seed(ticket, r, METRIC))]
        row += [pct(by_seed(groups[c], r, METRIC)) for c in controls]
        row += ["–" if not r else ci_text(describe(by_seed(ticket, r, METRIC), dense))]
        row += [ci_text(describe(by_seed(ticket, r, METRIC), by_seed(groups[c], r, METRIC))) for c in controls]
        lines.append("| " + " | ".join(row) + " |")
    rows = verdict_rows(claims, page, MARGIN)
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
        *lines, "", "Differences are paired by seed: mean and 95 % confidence interval (descriptive; the claims "
        "below carry the tests).", "", "## The published claims", "", *claims_table(rows), "",
        legend(100 * MARGIN, margin_reason(f"{100 * spread(dense):.2f} pp here" if math.isfinite(spread(dense))
                                            else ""), page.size), "",
        *_budget({c: groups[c] for c in ("ticket", *controls)}, sparse, df.attrs.get("round_length"), full), "",
    ])

"""Frankle, Dziugaite, Roy & Carbin (2020), linear mode connectivity: the instability of the dense network and
of its subnetworks (IMP's tickets, random pruning on their masks) against the rewind step k, from the table
``python -m lottery.stability_grid`` writes."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from lottery.literature.frankle2021 import DATA, MODELS
from lottery.literature.tables import paper
from lottery.literature.verdicts import MARGIN, Page, Test, directional, every
from lottery.literature.wording import P_HOLM, ci_text, claims_table, legend, margin_reason
from lottery.literature.wording import rows as verdict_rows
from lottery.stability import STABLE
from lottery.stability_grid import COLUMNS
from lottery.stats import ALPHA

SPARSE_MATCHING = 3.0  # F&C's LeNet tickets match the dense network down to ≈ 3.6 %: the levels claim 2 names


def _per_seed(df: Any, column: str) -> dict[int, float]:
    return {int(s): float(v) for s, v in zip(df["seed"], df[column], strict=True)}


def _error(df: Any) -> dict[int, float]:
    """A network's test error after training: the mean of its two trained copies, per seed."""
    return {int(s): (float(a) + float(b)) / 2 for s, a, b in zip(df["seed"], df["error_a"], df["error_b"],
                                                                  strict=True)}


def _pn(t: Test) -> str:
    return "no test at n = 1" if math.isnan(t.p) else f"p_holm = {P_HOLM}, n = {t.n}"


def _threshold(values: dict[int, float]) -> dict[int, float]:
    return dict.fromkeys(values, STABLE)


def _unstable_seeds(df: Any) -> str:
    """Descriptive: the single (seed, network, k) measurements at or above 2 %, which a mean can hide."""
    over = df[df["instability"] >= STABLE].sort_values(["subnetwork", "level", "k", "seed"])
    if over.empty:
        return f"Every one of the {len(df)} measurements is below 2 %."
    shown = "; ".join(f"{r.subnetwork} at {r.remaining_pct:.1f} %, seed {r.seed}, k = {r.k}: "
                      f"{100 * r.instability:.2f} %" for r in over.itertuples())
    return f"Single measurements at or above 2 % ({len(over)} of {len(df)}): {shown}."


def _coverage(df: Any) -> str:
    """How many measurements the table holds, of the study's total when its config is known, and how many
    remain: a partial study must not read as complete."""
    total = df.attrs.get("measurements")
    text = f"{len(df)}" + (f" of the study's {total}" if total else "") + " (seed, network, k) measurements."
    return text + (f" **{total - len(df)} remain.**" if total and len(df) < total else "")


@paper("frankle2020", needs=COLUMNS)
def frankle2020(df: Any) -> str:
    model, data = (str(df[c].iloc[0]) for c in ("model", "dataset"))
    model, data = MODELS.get(model, model), DATA.get(data, data)
    nets = {key: g for key, g in df.groupby(["subnetwork", "level"])}
    dense = {int(k): g for k, g in df[df["subnetwork"] == "dense"].groupby("k")}
    ks = sorted(int(k) for k in df["k"].unique())
    page, claims = Page(), []
    if 0 in dense:
        t = page.claim(directional(_per_seed(dense[0], "instability"), _threshold(dense[0]["seed"]), False))
        claims.append(("on MNIST the dense network (LeNet) is stable at initialisation (instability < 2 %)",
                       f"instability at k = 0 {100 * (t.diff + STABLE):.2f} % (one-sided {100 * (1 - ALPHA):g} % upper "
                       f"bound {100 * (t.high + STABLE):.2f} %; one-sided t of < 2 %; {_pn(t)})", t))
    tickets = {int(lv): g[g["k"] == 0] for (sub, lv), g in nets.items() if sub == "ticket"}
    named = {lv: g for lv, g in tickets.items() if len(g) and g["remaining_pct"].mean() >= SPARSE_MATCHING}
    if named:
        members = {lv: directional(_per_seed(g, "instability"), _threshold(g["seed"]), False) for lv, g in
                   named.items()}
        t = page.claim(every(list(members.values())))
        claims.append(("... and so are IMP's matching subnetworks (tickets down to ≈ 3.6 %)",
                       "instability at k = 0: " + "; ".join(
                           f"{named[lv]['remaining_pct'].mean():.1f} % {100 * named[lv]['instability'].mean():.2f} %"
                           for lv in members) + f" (each one-sided t of < 2 %, intersection–union; {_pn(t)})", t))
    # "only when stable": every unstable subnetwork (mean instability ≥ 2 % at some k) falls short of the dense
    # network trained from the same k by more than the margin; with none unstable the claim is not measured
    unstable = {key: g for key, g in df[df["subnetwork"] != "dense"].groupby(["subnetwork", "level", "k"])
                if g["instability"].mean() >= STABLE and int(key[2]) in dense}
    if unstable:
        members = {key: directional(_error(g), _error(dense[int(key[2])]), True, margin=MARGIN)
                   for key, g in unstable.items()}
        t = page.claim(every(list(members.values())))
        claims.append(("subnetworks reach full accuracy only when stable", f"{len(members)} unstable (subnetwork, "
                       "level, k): error − dense's from the same k " + "; ".join(
                           f"{s} level {lv} k = {k} {ci_text(m)} pp" for (s, lv, k), m in members.items())
                       + f" (each one-sided t, intersection–union; {_pn(t)})", t))
    else:
        t = page.claim(Test(math.nan, math.nan, 0))
        claims.append(("subnetworks reach full accuracy only when stable",
                       "no subnetwork was unstable at any k here, so the claim's premise never arises", t))
    page.close()

    head = ["subnetwork", "% remaining", *[f"k = {k}" for k in ks], "test error at k = 0 (%)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (sub, _), g in sorted(nets.items(), key=lambda kv: (kv[0][0] != "dense", kv[0][0], kv[0][1])):
        cells = []
        for k in ks:
            v = g[g["k"] == k]["instability"]
            cells.append(f"{100 * v.mean():.2f} ± {100 * v.std(ddof=1):.2f}" if len(v) > 1 else
                         (f"{100 * v.mean():.2f}" if len(v) else "–"))
        at0 = g[g["k"] == 0]
        err = f"{100 * sum(_error(at0).values()) / len(at0):.2f}" if len(at0) else "–"
        lines.append(f"| {sub} | {g['remaining_pct'].mean():.1f} | " + " | ".join(cells) + f" | {err} |")
    seeds = df["seed"].nunique()
    config = str(df.attrs.get("config", "configs/stability_frankle2020*.yaml"))
    lines += ["", _unstable_seeds(df)]
    dense0 = _error(dense[0]) if 0 in dense else {}
    # the dense network's seed-to-seed spread of test error at k = 0 (each seed: the mean of its two copies)
    spread = f"{100 * float(pd.Series(list(dense0.values())).std()):.2f} pp here" if len(dense0) > 1 else ""
    elsewhere = [] if (model, data) == (MODELS["lenet_300_100"], DATA["mnist"]) else [
        f"The paper's claims are about LeNet-300-100 on MNIST; here they are tested on {model} on {data} (claim "
        f"2's levels: this grid's tickets with ≥ {SPARSE_MATCHING:g} % of the weights), so a verdict says whether "
        "each claim carries over to this network and data, not whether the paper measured it right.", ""]
    return "\n".join([
        f"# Frankle et al. (2020), stability to SGD noise: {model} on {data}", "",
        f"Run: `python -m lottery.stability_grid {config}` (the networks of the grid "
        "its config names; it trains the grid cells whose masks the machine lacks); this page: `python -m "
        f"lottery.literature frankle2020 {df.attrs.get('folder', 'results/frankle2020')}/stability.csv`. For each "
        "seed, network and rewind step k: train from w0 "
        "for k steps, then two copies on two other batch orders; instability = the largest test error on the "
        "line between the copies (30 points) − the mean of its ends; stable below 2 % (the paper's threshold). "
        "The subnetworks are the IMP tickets of the grid and random pruning on their masks (same per-layer "
        f"counts), at the grid's levels. {seeds} seeds, {_coverage(df)}", "",
        *elsewhere,
        "![instability against k](stability.png)", "",
        "Instability (%, mean ± std over seeds) against the rewind step k, and the test error the copies reach:", "",
        *lines, "", "## The published claims", "", *claims_table(verdict_rows(claims, page, MARGIN)), "",
        legend(100 * MARGIN, margin_reason(spread), page.size), "",
    ])

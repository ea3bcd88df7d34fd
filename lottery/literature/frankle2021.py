"""Frankle, Dziugaite, Roy & Carbin (2021), "Pruning neural networks at initialization: why are we missing the
mark?": SNIP, GraSP, SynFlow and magnitude at init against random pruning and IMP at IMP's densities, and the
ablations of their masks (shuffled within each layer, reinitialised, scores inverted)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from lottery.grid import load_grid
from lottery.literature.budget import budget_section
from lottery.literature.layers import layer_section
from lottery.literature.tables import by_seed, late_stops, paper, pct, per_cell, remaining, spread
from lottery.literature.verdicts import MARGIN, Page, Test, at_least, describe, directional, every
from lottery.literature.wording import P_HOLM, ci_text, claims_table, legend, margin_reason
from lottery.literature.wording import rows as verdict_rows
from lottery.results import read_table

METRIC = "test_acc_at_best"  # the test accuracy at the epoch of minimum validation loss (early stopping)
METHODS = {"snip": "SNIP", "grasp": "GraSP", "synflow": "SynFlow", "magnitude": "magnitude at init"}
SHUFFLE, REINIT = "random_prune", "reinit"  # the controls that shuffle within each layer, and reinitialise
INVERTED = "_inverted"  # the sibling grid's folder suffix (configs/compare_frankle2021_inverted.yaml)
MODELS = {"lenet_300_100": "LeNet-300-100", "lenet5": "LeNet-5"}
DATA = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST", "cifar10": "CIFAR-10"}


CLAIMS = ("SNIP, GraSP, SynFlow and magnitude at init beat random pruning",
          "... but stay below magnitude pruning after training (IMP)",
          "shuffling the kept weights within each layer keeps or improves their accuracy",
          "reinitialising the kept weights keeps or improves their accuracy",
          "... unlike IMP's tickets, which lose accuracy under both",
          "GraSP does as well or better with its scores inverted")


def with_inverted(df: Any) -> Any:
    """The table, with the inverted-scores grid's rows when its table lies beside it (``<folder>_inverted``)."""
    folder = Path(str(df.attrs.get("folder", "")))
    sibling = folder.parent / (folder.name + INVERTED) / "results.csv"
    if not folder.name or not sibling.is_file():
        return df
    both = pd.concat([df, read_table(sibling)], ignore_index=True)
    df.attrs["also_read"] = [str(sibling)]  # the page's environment section counts its cells too
    both.attrs.update(df.attrs, inverted=str(sibling))
    return both


def _pn(t: Test) -> str:
    return "no test at n = 1" if math.isnan(t.p) else f"p_holm = {P_HOLM}, n = {t.n}"


def _family(page: Page, members: dict[str, Test], named: int) -> Test:
    """Every named member at α (intersection–union); a member the table lacks never counts for the claim."""
    return page.claim(every(list(members.values()), named=named))


def _each(members: dict[str, Test]) -> str:
    return "; ".join(f"{METHODS.get(m, m)} {ci_text(t)} pp" for m, t in members.items()) or "none measured"


def _claims(groups: dict[str, Any], pruned: list[int], page: Page) -> list[tuple[str, str, Test]]:
    """The paper's claims, each one primary test on a seed's mean over the pruned levels (fixed in the grid's
    header before the run)."""
    cell = {name: per_cell(g, METRIC, pruned) for name, g in groups.items()}
    have = [m for m in METHODS if m in cell]
    out: list[tuple[str, str, Test]] = []
    iu = "intersection–union over the methods, each one-sided paired t at α"
    if "random" in cell:
        members = {m: directional(cell[m], cell["random"], True, margin=MARGIN) for m in have}
        t = _family(page, members, len(METHODS))
        out.append((CLAIMS[0],
                    f"method − random, per seed over the pruned levels: {_each(members)} ({iu}; {_pn(t)})", t))
    if "ticket" in cell:
        members = {m: directional(cell["ticket"], cell[m], True, margin=MARGIN) for m in have}
        t = _family(page, members, len(METHODS))
        out.append((CLAIMS[1],
                    f"IMP − method: {_each(members)} ({iu}; {_pn(t)})", t))
    for control in (SHUFFLE, REINIT):
        members = {m: at_least(cell[f"{m} {control}"], cell[m], MARGIN) for m in have if f"{m} {control}" in cell}
        if members:
            t = _family(page, members, len(METHODS))
            out.append((CLAIMS[2 if control == SHUFFLE else 3],
                        f"ablated − method: {_each(members)} (non-inferiority within {100 * MARGIN:g} pp, "
                        f"intersection–union over the methods; {_pn(t)})", t))
    if "ticket" in cell and (SHUFFLE in cell or REINIT in cell):
        members = {c: directional(cell["ticket"], cell[c], True, margin=MARGIN) for c in (SHUFFLE, REINIT)
                   if c in cell}
        t = _family(page, members, 2)
        out.append((CLAIMS[4],
                    "IMP − ablated: " + "; ".join(f"{'shuffled' if c == SHUFFLE else 'reinit'} {ci_text(m)} pp"
                                                  for c, m in members.items())
                    + f" (intersection–union, one-sided paired t each; {_pn(t)})", t))
    if "grasp-inverted" in cell and "grasp" in cell:
        t = page.claim(at_least(cell["grasp-inverted"], cell["grasp"], MARGIN))
        out.append((CLAIMS[5],
                    f"GraSP inverted − GraSP {ci_text(t)} pp (non-inferiority within {100 * MARGIN:g} pp; {_pn(t)})",
                    t))
    said = {published for published, _, _ in out}
    for published in CLAIMS:  # a claim whose arms the table lacks yet is listed, untested
        if published not in said:
            out.append((published, "its arms are not in the table yet", page.claim(Test(math.nan, math.nan, 0))))
    return sorted(out, key=lambda c: CLAIMS.index(c[0]))


def _level_table(groups: dict[str, Any], rounds: list[int], ref: Any) -> list[str]:
    arms = [a for a in ("ticket", *METHODS, "random") if a in groups]
    head = ["round", "% remaining", *[("IMP" if a == "ticket" else METHODS.get(a, a)) for a in arms]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rounds:
        lines.append(f"| {r} | {remaining(ref, r):.1f} | "
                     + " | ".join(pct(by_seed(groups[a], r, METRIC)) for a in arms) + " |")
    return lines


def _late_by_method(groups: dict[str, Any], length: tuple[str, int]) -> str:
    """The still-improving rows of each method as chosen: a comparison between two methods is biased towards the
    one whose rows stopped improving first, so a reader sees which way the budget leans."""
    parts = []
    for m in ("ticket", *METHODS, "random"):
        if m in groups:
            k, n = late_stops(groups[m][groups[m]["round"] > 0], length)
            parts.append(f"{'IMP' if m == 'ticket' else METHODS.get(m, m)} {k} of {n}")
    return "by method as chosen: " + ", ".join(parts)


def _ablation_table(groups: dict[str, Any], pruned: list[int]) -> list[str]:
    """Each method and its ablations: a seed's mean over the pruned levels, and the paired differences. The last
    column sets each method against IMP's masks shuffled (IMP's per-layer shares, random positions within each
    layer): whether IMP's lead over it is the shares it gives each layer or the weights it keeps in them."""
    head = ["method", "as chosen", "shuffled − it (pp)", "reinit − it (pp)", "inverted − it (pp)",
            "it − IMP shuffled (pp)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    imp_shuffled = per_cell(groups[SHUFFLE], METRIC, pruned) if SHUFFLE in groups else None
    for m in ("ticket", *METHODS, "random"):
        if m not in groups:
            continue
        own = per_cell(groups[m], METRIC, pruned)
        names = {SHUFFLE: f"{m} {SHUFFLE}", REINIT: f"{m} {REINIT}", "inv": f"{m}-inverted"}
        if m == "ticket":
            names = {SHUFFLE: SHUFFLE, REINIT: REINIT, "inv": "imp-inverted"}
        cells = [ci_text(describe(per_cell(groups[n], METRIC, pruned), own)) if n in groups else "–"
                 for n in names.values()]
        cells.append("–" if m == "ticket" or imp_shuffled is None else ci_text(describe(own, imp_shuffled)))
        lines.append(f"| {'IMP' if m == 'ticket' else METHODS.get(m, m)} | {pct(own)} | " + " | ".join(cells) + " |")
    return lines


def _beside(folder: str | None, runs: set[str]) -> list[str]:
    """The sections read from files beside the table: where each method keeps its weights, the budget check."""
    if folder is None:
        return []
    sections = (layer_section(folder, {"ticket": "IMP", **METHODS, "random": "random"}, runs),
                budget_section(folder, {"imp": "IMP", **METHODS}))
    return [text for text in sections if text]


def _collapse(groups: dict[str, Any], folder: str | None) -> str:
    """SynFlow's point: within the trained levels (the table's ``collapsed_layers``) and, from ``collapse.csv``
    (``python -m lottery.collapse GRID``), the highest density at which each method left a layer empty when its
    schedule is continued without training."""
    said = []
    for m in (*METHODS, "random"):
        for name in (m, f"{m}-inverted"):
            g = groups.get(name)
            if g is None or "collapsed_layers" not in g.columns:
                continue
            hit = g[g["collapsed_layers"].fillna(0) > 0]
            label = METHODS.get(m, m) + (" inverted" if name != m else "")
            said.append(f"{label}: " + ("none down to " + f"{g['remaining_pct'].min():.1f} %" if hit.empty else
                                        f"from {hit['remaining_pct'].max():.1f} % ({hit['seed'].nunique()} of "
                                        f"{g['seed'].nunique()} seeds)"))
    text = ("Layer collapse at the trained levels (a layer left without any weight, recorded before each level "
            "trains): " + "; ".join(said) + ".") if said else ""
    path = Path(folder) / "collapse.csv" if folder is not None else None
    if path is not None and path.is_file():
        sweep = pd.read_csv(path)
        parts = []
        for m, g in sweep.groupby("method", sort=False):
            hit = g["remaining_pct"].dropna()
            forced = "forced" in g.columns and bool(g.loc[hit.index, "forced"].astype(str).eq("True").all())
            parts.append(f"{METHODS.get(str(m), str(m))}: " + (
                f"none in {int(g['level'].isna().sum())} seeds" if hit.empty else
                f"{hit.median():.3g} % (median; {len(hit)} of {len(g)} seeds, first {g['layers'].dropna().iloc[0]}"
                + (", only when fewer weights were kept than layers share them" if forced else "") + ")"))
        text += (" Past them (`python -m lottery.collapse`, the schedule continued at w0 without training), the "
                 "highest density at which a method leaves a layer empty: " + "; ".join(parts) + ".")
    return text


def _cell_counts(df: Any, main_runs: int) -> str:
    """How many cells of each grid the table holds, of how many (the main grid's and, when its table was read,
    the inverted grid's, whose config lies beside the main one), and how many remain."""
    expected, config = df.attrs.get("grid_cells"), df.attrs.get("config")
    inverted = df["run"].nunique() - main_runs
    sibling = Path(str(config)).with_name(Path(str(config)).stem + INVERTED + ".yaml") if config else None
    inv_expected = len(load_grid(sibling)[1]) if sibling is not None and sibling.is_file() else None
    text = f"{main_runs} finished cells" + (f" of the main grid's {expected}" if expected else "")
    if df.attrs.get("inverted") or inv_expected:  # a sibling grid not run yet is one whose cells all remain
        text += f" and {inverted}" + (f" of the inverted grid's {inv_expected}" if inv_expected else " inverted")
    text += f", {len(df)} rows, rounds 0–{int(df['round'].max())}."
    left = [f"{n - k} of the {what} grid" for n, k, what in ((expected, main_runs, "main"),
                                                               (inv_expected, inverted, "inverted")) if n and k < n]
    return text + (f" **Cells remain: {' and '.join(left)}.**" if left else "")


@paper("frankle2021")
def frankle2021(df: Any) -> str:
    main_runs = df["run"].nunique()
    df = with_inverted(df)
    groups = {c: g for c, g in df.groupby("control")}
    ref = groups.get("ticket", df)
    rounds = sorted(int(r) for r in ref["round"].unique())
    pruned = [r for r in rounds if r > 0]
    page = Page()
    claims = _claims(groups, pruned, page)
    page.close()
    dense = by_seed(ref, 0, METRIC)
    folder = str(df.attrs.get("folder", "results/frankle2021"))
    beside = df.attrs.get("folder")  # the files beside the table: none for a table that was not read from disk
    late = ""
    if df.attrs.get("round_length"):
        length = df.attrs["round_length"]
        k, n = late_stops(df[df["round"] > 0], length)
        late = (f" {k} of {n} pruned (seed, level) rows had their minimum validation loss in a level's last epoch "
                f"(still improving: their accuracy is a lower bound); {_late_by_method(groups, length)}.")
    config = Path(str(df.attrs.get("config", "configs/compare_frankle2021.yaml"))).name
    counts = _cell_counts(df, main_runs)
    model, data = (str(df[c].iloc[0]) if c in df.columns else "?" for c in ("model", "dataset"))
    length = df.attrs.get("round_length") or ("epochs", "?")
    return "\n".join([
        f"# Frankle et al. (2021), pruning at initialisation: {MODELS.get(model, model)} on "
        f"{DATA.get(data, data)}", "",
        f"Run: `python -m lottery.compare configs/{config}` and `configs/{config.replace('.yaml', '_inverted.yaml')}`;"
        f" this page: `python -m lottery.literature frankle2021 {folder}/results.csv` (it reads the inverted grid's "
        "table beside it). Protocol and claims are fixed in the first grid's header: F&C's recipe, levels at F&C's "
        f"rounds 3, 6, …, 18 (IMP rewound to w0, three of F&C's rounds at a time), {length[1]} {length[0]} per "
        "level, early stopping at the minimum validation loss; "
        "SNIP, GraSP, SynFlow, magnitude and random choose every level's masks afresh at w0 (global scope, the "
        "output layer on IMP's schedule) and train from w0; shuffled = random positions with each layer's "
        f"count (`random_prune`), reinit = a new w0 on the same masks. Dense networks: {pct(dense)} %.", "",
        counts + late, "",
        "![each method as chosen, shuffled and reinitialised](methods.png)", "",
        "Test accuracy (%) at each level's early-stopping epoch, mean ± std over seeds:", "",
        *_level_table(groups, rounds, ref), "",
        "Each method and its ablations, per seed the mean over the pruned levels (paired differences: mean and "
        "95 % CI, descriptive); the last column sets each method against IMP's masks shuffled, which keep IMP's "
        "share of each layer: above 0, IMP's lead over the method is not the shares it gives the layers:", "",
        *_ablation_table(groups, pruned), "", _collapse(groups, beside), "", *_beside(beside, set(df["run"])),
        "## The published claims", "", *claims_table(verdict_rows(claims, page, MARGIN)), "",
        legend(100 * MARGIN, margin_reason(f"{100 * spread(dense):.2f} pp here" if math.isfinite(spread(dense))
                                            else ""), page.size), "",
    ])

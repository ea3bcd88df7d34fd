"""A comparison of starts on any model: every start against the first one (per cell and per level), and
whether the LeNet-300-100 ranking of the starts (the Wijnja and Sobol' grids) carries over to this model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lottery.literature.tables import (
    by_seed,
    coverage,
    mean,
    paper,
    pct,
    per_cell,
    remaining,
    spread,
)
from lottery.literature.verdicts import (
    AGREES,
    NOT_DETECTED,
    REFUTED,
    Page,
    Test,
    claims_table,
    detectable,
    directional,
    legend,
    paired_t,
)
from lottery.stats import p_text

METRIC = "test_acc"
REFERENCE = ("wijnja2020", "sobol")
BASELINE = "xavier_normal/hash"  # sibling results folders holding LeNet-300-100's cells of the same starts


def _reference(folder: Path) -> Any:
    import pandas as pd

    tables = [pd.read_csv(p) for name in REFERENCE if (p := folder.parent / name / "results.csv").is_file()]
    if not tables:
        return None
    ref = pd.concat(tables).drop_duplicates("run" if "round" not in tables[0] else ["run", "round"])
    return ref[ref["control"] == "ticket"] if "control" in ref else ref


def _pairs(df: Any, starts: list[str], page: Page) -> dict[tuple[str, str], Test]:
    cells = {s: per_cell(df[df["start"] == s], METRIC) for s in starts}
    return {(a, b): page.add(paired_t(cells[a], cells[b])) for i, a in enumerate(starts) for b in starts[i + 1 :]}


@paper("starts")
def starts(df: Any) -> str:
    df = df[df["control"] == "ticket"] if "control" in df else df
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
    page = Page()
    base = df[df["start"] == order[0]]
    levels = {(s, r): page.add(paired_t(by_seed(df[df["start"] == s], r, METRIC), by_seed(base, r, METRIC)))
              for s in order[1:] for r in rounds}
    here = _pairs(df, order, page)
    there = _pairs(ref, common, page) if len(common) > 1 else {}
    page.close()

    head = ["start", "seeds", *[f"{remaining(df, r):.1f} %" for r in shown], "cell mean (%)",
            f"− {order[0]} (pp)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in order:
        g = df[df["start"] == s]
        t = here.get((order[0], s))
        vs = "–" if t is None else f"{-100 * t.diff:+.2f} (p = {p_text(t.p_adj)})"
        lines.append(f"| {s} | {g['seed'].nunique()} | " + " | ".join(pct(by_seed(g, r, METRIC)) for r in shown)
                     + f" | {pct(per_cell(g, METRIC))} | {vs} |")
    ranking = sorted(order, key=lambda s: -mean(per_cell(df[df["start"] == s], METRIC)))
    claims: list[tuple[str, str, str]] = []
    if there:
        ref_rank = sorted(common, key=lambda s: -mean(per_cell(ref[ref["start"] == s], METRIC)))
        kept, reversed_, lost = [], [], []
        for (a, b), t in there.items():
            if not t.significant():
                continue
            mine = here[a, b]
            v = directional(mine, t.diff > 0)
            pair = f"{a} {'>' if t.diff > 0 else '<'} {b}"
            (kept if v == AGREES else reversed_ if v == REFUTED else lost).append(pair)
        verdict = REFUTED if reversed_ else AGREES if kept and not lost else NOT_DETECTED if not kept else "partly"
        new = [f"{a} {'>' if t.diff > 0 else '<'} {b}" for (a, b), t in here.items()
               if t.significant() and (a, b) in there and not there[a, b].significant()]
        sd = spread(per_cell(base, METRIC))
        n = base["seed"].nunique()
        claims.append((f"the LeNet-300-100 ranking of starts carries over to {model} on {dataset}",
                       f"LeNet-300-100 (Wijnja/Sobol' grids, cell means): {' > '.join(ref_rank)}; here: "
                       f"{' > '.join(s for s in ranking if s in common)}. Of the pairs that differ significantly on "
                       f"LeNet-300-100, {len(kept)} differ the same way here ({'; '.join(kept) or 'none'}), "
                       f"{len(reversed_)} significantly the other way ({'; '.join(reversed_) or 'none'}), {len(lost)} "
                       f"not detected ({'; '.join(lost) or 'none'}; smallest detectable difference here at n = {n}: "
                       f"{100 * detectable(sd, n, page.size):.2f} pp). Significant here but not on LeNet-300-100: "
                       f"{'; '.join(new) or 'none'}", verdict))
    sig = [f"- {s} {'above' if t.diff > 0 else 'below'} {order[0]} by {100 * abs(t.diff):.2f} pp at "
           f"{remaining(df, r):.1f} % (paired t p_holm = {p_text(t.p_adj)})" for (s, r), t in levels.items()
           if t.significant()]
    config = df.attrs.get("config", "the grid's config")
    return "\n".join([
        f"# Starts compared on {model} / {dataset}", "",
        f"Run: `python -m lottery.compare {config}`; this page: `python -m lottery.literature starts "
        f"{folder}/results.csv --grid {config}`; the config's header gives the protocol.", "",
        coverage(df, df.attrs.get("grid_cells")), "", "![test accuracy](accuracy.png)", "",
        "Test accuracy (%) at each round's end, mean ± std over seeds; *cell mean*: each seed's mean over all its "
        f"levels (one number per cell), and its seed-paired difference from {order[0]}.", "", *lines, "",
        f"Ranking by cell mean: {' > '.join(ranking)}.", "",
        "## Does the LeNet-300-100 ranking carry over?", "",
        *(claims_table(claims) if claims else ["No LeNet-300-100 grid of these starts beside this folder."]), "",
        legend(0.5), "", f"Levels at which a start differs from {order[0]} (paired by seed, Holm over the page):", "",
        *(sig or ["- None after Holm's correction."]), "",
    ])

"""Are the differences between starts real? Per sparsity level, every pair of starts: Welch's t-test and
Mann–Whitney U (scipy.stats) with Holm's correction over every level and pair of the page, effect sizes (Cohen's d,
Cliff's δ) and seed-paired win rates in the QRNG paper's style.

    python -m lottery.stats runs/compare_quick/results.csv

writes ``stats.csv`` (one row per level and pair) and ``stats.md`` (which starts differ at each level).
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats as sps

from lottery.atomic import write_csv, write_text
from lottery.console import run_cli, table_arguments
from lottery.results import read_table

ALPHA = 0.05


def p_text(p: float, digits: int = 2) -> str:
    """``p`` to ``digits`` significant figures, or more where rounding would carry it across α: a significant
    0.0496 must not read "0.05", nor a non-significant 0.0504."""
    for d in range(digits, 7):
        s = f"{p:.{d}g}"
        if (float(s) < ALPHA) == (p < ALPHA) and (float(s) != ALPHA or p == ALPHA):
            return s
    return repr(p)


def holm(pvalues: list[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (step-down, monotone), in the input order. A NaN (a comparison that
    could not be tested) stays NaN and is not a member of the family: m counts the tests that have a p."""
    m = sum(not math.isnan(p) for p in pvalues)
    order = sorted(range(len(pvalues)), key=lambda i: (math.isnan(pvalues[i]), pvalues[i]))
    adjusted, running = [math.nan] * len(pvalues), 0.0
    for rank, i in enumerate(order):
        if math.isnan(pvalues[i]):
            continue
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def cohens_d(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 2 or len(b) < 2:
        return math.nan
    pooled = math.sqrt(((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1)) / (len(a) + len(b) - 2))
    return float((a.mean() - b.mean()) / pooled) if pooled > 0 else math.nan


def cliffs_delta(a: np.ndarray, b: np.ndarray) -> float:
    diff = np.sign(a[:, None] - b[None, :])
    return float(diff.mean())


def win_rate(a: dict[int, float], b: dict[int, float]) -> float:
    """Fraction of shared seeds on which ``a`` beats ``b`` (ties count half)."""
    shared = sorted(set(a) & set(b))
    if not shared:
        return math.nan
    return sum(1.0 if a[s] > b[s] else 0.5 if a[s] == b[s] else 0.0 for s in shared) / len(shared)


def two_sample_tests(a: np.ndarray, b: np.ndarray) -> tuple[Any, Any]:
    """Welch's t-test (None with fewer than 2 values a side) and two-sided Mann–Whitney U (None when a
    side is empty), scipy's result objects."""
    with np.errstate(all="ignore"):
        welch = sps.ttest_ind(a, b, equal_var=False) if len(a) > 1 and len(b) > 1 else None
        mwu = sps.mannwhitneyu(a, b, alternative="two-sided") if len(a) and len(b) else None
    return welch, mwu


def pairwise(df: Any, metric: str = "test_acc") -> list[dict[str, Any]]:
    """One record per (model, round, pair of starts)."""
    rows: list[dict[str, Any]] = []
    for (model, rnd), level in df.groupby(["model", "round"], sort=True):
        by_start = {s: dict(zip(g["seed"], g[metric], strict=True)) for s, g in level.groupby("start", sort=True)}
        remaining = float(level["remaining_pct"].mean())
        block = []
        for sa, sb in itertools.combinations(sorted(by_start), 2):
            a, b = np.array(list(by_start[sa].values())), np.array(list(by_start[sb].values()))
            welch, mwu = two_sample_tests(a, b)
            block.append({
                "model": model, "round": int(rnd), "remaining_pct": remaining, "start_a": sa, "start_b": sb,
                "n_a": len(a), "n_b": len(b), "mean_a": a.mean(), "mean_b": b.mean(), "diff": a.mean() - b.mean(),
                "welch_t": float(welch.statistic) if welch else math.nan,
                "welch_p": float(welch.pvalue) if welch else math.nan,
                "mwu_u": float(mwu.statistic) if mwu else math.nan, "mwu_p": float(mwu.pvalue) if mwu else math.nan,
                "cohens_d": cohens_d(a, b), "cliffs_delta": cliffs_delta(a, b),
                "win_rate_a": win_rate(by_start[sa], by_start[sb]),
            })
        rows += block
    # one family per test: Holm over every level and pair the page shows, not per level
    for test in ("welch", "mwu"):
        for rec, adj in zip(rows, holm([r[f"{test}_p"] for r in rows]), strict=True):
            rec[f"{test}_p_holm"] = adj
    for rec in rows:  # Welch decides; Mann–Whitney (no normality assumed) is reported beside it
        rec["significant"] = bool(rec["welch_p_holm"] < ALPHA)
        rec["significant_mwu"] = bool(rec["mwu_p_holm"] < ALPHA)
    return rows


def mwu_floor_note(rows: list[dict[str, Any]]) -> str:
    """Where Mann–Whitney cannot be significant after Holm over the page at these sample sizes, say so."""
    sized = [r for r in rows if not math.isnan(r["mwu_p"])]
    if not sized:
        return ""
    n_a, n_b = min(r["n_a"] for r in sized), min(r["n_b"] for r in sized)
    smallest = 2 / math.comb(n_a + n_b, n_a)
    if smallest * len(sized) <= ALPHA:
        return ""
    return (f" With {n_a} vs {n_b} seeds Mann–Whitney's smallest possible p is {smallest:.2g}, so after Holm over "
            f"the page's {len(sized)} comparisons it can never be significant: the ✓ column cannot appear.")


def curves(table: str | Path, metric: str = "test_acc") -> list[dict[str, Any]]:
    """Mean ± std over seeds per (model, start, round): the curves of the figures and the W&B summary."""
    df = read_table(table)
    out = []
    for (model, start, rnd), g in df.groupby(["model", "start", "round"], sort=True):
        out.append({"model": model, "start": start, "round": int(rnd),
                    "remaining_pct": float(g["remaining_pct"].mean()), f"mean_{metric}": float(g[metric].mean()),
                    f"std_{metric}": float(g[metric].std(ddof=1)) if len(g) > 1 else 0.0, "n": len(g)})
    return out


def win_table(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean seed-paired win rate of each start over each other start, across all levels."""
    acc: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        if not math.isnan(r["win_rate_a"]):
            acc.setdefault((r["start_a"], r["start_b"]), []).append(r["win_rate_a"])
            acc.setdefault((r["start_b"], r["start_a"]), []).append(1 - r["win_rate_a"])
    starts = sorted({a for a, _ in acc})
    return {a: {b: float(np.mean(acc[(a, b)])) if (a, b) in acc else math.nan for b in starts} for a in starts}


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["# Which starts differ?", "",
             f"Per level: Welch's t-test and Mann–Whitney U on test accuracy over seeds, each Holm-corrected over "
             f"every level and pair on this page ({len(rows)} comparisons); a pair *differs* when Welch's corrected "
             f"p < {ALPHA} (✓ when Mann–Whitney agrees). d: Cohen's d; δ: Cliff's delta; win rate: seeds on which the "
             "better start wins." + mwu_floor_note(rows),
             ""]
    levels = sorted({(r["model"], r["round"]) for r in rows})
    for model, rnd in levels:
        block = [r for r in rows if (r["model"], r["round"]) == (model, rnd)]
        remaining = block[0]["remaining_pct"]
        diff = [r for r in block if r["significant"]]
        lines.append(f"## {model}, round {rnd}: {remaining:.1f} % of weights remaining")
        for r in diff:
            better, worse = (r["start_a"], r["start_b"]) if r["diff"] > 0 else (r["start_b"], r["start_a"])
            wins = r["win_rate_a"] if r["diff"] > 0 else 1 - r["win_rate_a"]
            mark = " ✓" if r["significant_mwu"] else ""
            lines.append(f"- **{better} > {worse}** by {100 * abs(r['diff']):.2f} pp (Welch p_holm = "
                         f"{p_text(r['welch_p_holm'], 3)}, MWU p_holm = {p_text(r['mwu_p_holm'], 3)}, "
                         f"|d| = {abs(r['cohens_d']):.2f}, |δ| = {abs(r['cliffs_delta']):.2f}, "
                         f"win rate {wins:.2f}){mark}")
        same = len(block) - len(diff)
        if not diff:
            lines.append(f"- None of the {same} pairs differs significantly.")
        elif same:
            lines.append(f"- The other {same} pair{'s do' if same > 1 else ' does'} not differ significantly.")
        lines.append("")
    wins = win_table(rows)
    if wins:
        starts = list(wins)
        lines += ["## Win rates (row beats column, seed-paired, mean over levels)", "",
                  "| start | " + " | ".join(starts) + " |", "|---|" + "---|" * len(starts)]
        lines += [f"| {a} | " + " | ".join("–" if a == b else f"{wins[a][b]:.2f}" for b in starts) + " |"
                  for a in starts]
    return "\n".join(lines) + "\n"


def write_stats(table: str | Path, out: str | Path) -> list[dict[str, Any]]:
    rows = pairwise(read_table(table))
    write_csv(Path(out) / "stats.csv", rows)
    write_text(Path(out) / "stats.md", markdown(rows))
    return rows


def main(argv: list[str] | None = None) -> int:
    results, out = table_arguments("python -m lottery.stats", __doc__, argv)

    def body() -> int:
        write_stats(results, out)
        print(f"wrote {out / 'stats.md'}")
        return 0

    return run_cli(body)


if __name__ == "__main__":
    raise SystemExit(main())

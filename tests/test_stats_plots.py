"""Statistics against scipy and hand-computed values; figures; the notebook runs top to bottom."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from nbclient import NotebookClient
from scipy import stats as sps

from lottery import stats
from lottery.plot import dense_accuracy
from lottery.plot import main as plot_main
from lottery.results import read_table
from tests.data_fixtures import synthetic_results

REPO = Path(__file__).resolve().parents[1]


def test_holm_matches_the_hand_computed_step_down() -> None:
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert stats.holm([0.5, 0.001]) == pytest.approx([0.5, 0.002])
    assert stats.holm([0.9, 0.8]) == pytest.approx([1.0, 1.0])  # 2 × 0.8 capped at 1; monotone
    # an untestable comparison (NaN) is not a member of the family: two tests, not three (issue 34)
    adjusted = stats.holm([0.01, math.nan, 0.04])
    assert adjusted[0] == pytest.approx(0.02) and math.isnan(adjusted[1]) and adjusted[2] == pytest.approx(0.04)


@pytest.mark.parametrize(("p", "shown"), [(0.0123, "0.012"), (0.0496, "0.0496"), (0.0504, "0.0504"),
                                          (0.04996, "0.04996"), (0.05, "0.05"), (0.051, "0.051"), (3.6e-05, "3.6e-05")])
def test_a_p_value_is_never_rounded_across_alpha(p: float, shown: str) -> None:
    """Two significant figures, unless they would turn a significant 0.0496 into "0.05" (or 0.0504 too)."""
    assert stats.p_text(p) == shown
    assert (float(shown) < stats.ALPHA) == (p < stats.ALPHA)


def test_effect_sizes_and_win_rates() -> None:
    a, b = np.array([1.0, 2.0, 3.0]), np.array([2.0, 3.0, 4.0])
    assert stats.cohens_d(a, b) == pytest.approx(-1.0)
    assert stats.cliffs_delta(np.array([3.0, 4.0]), np.array([1.0, 3.0])) == pytest.approx(0.75)
    assert stats.win_rate({1: 0.9, 2: 0.5, 3: 0.7}, {1: 0.8, 2: 0.5, 3: 0.9, 4: 1.0}) == pytest.approx(0.5)


def test_pairwise_finds_the_real_difference_and_only_it(tmp_path: Path) -> None:
    table = synthetic_results(tmp_path / "results.csv")
    rows = stats.pairwise(read_table(table))
    assert len(rows) == 4 * 3  # 4 levels × 3 pairs
    for r in rows:
        pair = {r["start_a"], r["start_b"]}
        assert r["significant"] == ("good" in pair), r
    df = read_table(table)
    level = df[df["round"] == 2]
    a, b = level[level.start == "base"].test_acc.to_numpy(), level[level.start == "good"].test_acc.to_numpy()
    rec = next(r for r in rows if r["round"] == 2 and {r["start_a"], r["start_b"]} == {"base", "good"})
    assert rec["welch_p"] == pytest.approx(sps.ttest_ind(a, b, equal_var=False).pvalue)
    assert rec["mwu_p"] == pytest.approx(sps.mannwhitneyu(a, b, alternative="two-sided").pvalue)
    assert rec["win_rate_a"] == 0.0 and rec["cliffs_delta"] == -1.0  # base never beats good
    md = stats.markdown(rows)
    assert "**good > base**" in md and "**good > same**" in md
    assert "The other 1 pair does not differ significantly." in md
    wins = stats.win_table(rows)
    assert wins["good"]["base"] == 1.0 and wins["base"]["good"] == 0.0
    assert not math.isnan(wins["base"]["same"])


def test_plot_cli_writes_png_and_svg(tmp_path: Path) -> None:
    table = synthetic_results(tmp_path / "results.csv")
    assert plot_main([str(table), "--out", str(tmp_path / "fig")]) == 0
    for name in ("accuracy", "sleeping", "early_stop"):
        png, svg = tmp_path / "fig" / f"{name}.png", tmp_path / "fig" / f"{name}.svg"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
        text = svg.read_text()
        assert "<svg" in text and "good (n=6)" in text and "% of weights remaining" in text

    df = pd.read_csv(table)
    for name, column in (("accuracy", "test_acc"), ("accuracy_at_best", "test_acc_at_best")):
        dense = 100 * df[df["round"] == 0][column].mean()  # the dashed line is the data's, not a constant
        assert f"dense (mean {dense:.2f} %)" in (tmp_path / "fig" / f"{name}.svg").read_text(), name
    assert "at early stopping (best validation)" in (tmp_path / "fig" / "accuracy_at_best.svg").read_text()
    # early stopping in iterations (F&C's unit) where every row has them, in epochs where a table lacks them
    assert "early-stopping iteration" in (tmp_path / "fig" / "early_stop.svg").read_text()
    df.assign(steps_to_best=float("nan")).to_csv(tmp_path / "epochs.csv", index=False)
    assert plot_main([str(tmp_path / "epochs.csv"), "--out", str(tmp_path / "epochs")]) == 0
    assert "early-stopping epoch" in (tmp_path / "epochs" / "early_stop.svg").read_text()


def test_the_dense_line_is_the_tickets_round_zero_not_a_controls() -> None:
    rows = [("ticket", 0, 0.97), ("ticket", 0, 0.99), ("ticket", 1, 0.5), ("reinit", 0, 0.80),
            ("random_prune", 0, 0.97)]
    df = pd.DataFrame(rows, columns=["control", "round", "test_acc"])
    assert dense_accuracy(df, "test_acc") == pytest.approx(0.98)
    # a grid without controls (every row a ticket, or no control column): all its round-0 cells are dense
    assert dense_accuracy(df[df["control"] != "ticket"].assign(control="ticket"), "test_acc") == pytest.approx(0.885)
    assert dense_accuracy(df.drop(columns="control"), "test_acc") == pytest.approx((0.97 + 0.99 + 0.80 + 0.97) / 4)


def test_figures_are_byte_identical_when_regenerated(tmp_path: Path) -> None:
    """A rerun of a finished grid rewrites its committed figures: same table, same bytes (no date, no
    random SVG ids), so a diff shows only real changes."""

    table = synthetic_results(tmp_path / "results.csv")
    assert plot_main([str(table), "--out", str(tmp_path / "a")]) == 0
    time.sleep(1.1)  # a date stamp would now differ
    assert plot_main([str(table), "--out", str(tmp_path / "b")]) == 0
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert len(names) == 8 and names == sorted(p.name for p in (tmp_path / "b").iterdir())
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert "<dc:date>" not in (tmp_path / "a" / "accuracy.svg").read_text()


def execute_notebook(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **env: str) -> tuple[list, str]:
    """Run ``notebooks/<name>`` top to bottom in a kernel; its outputs and their text. No cell may fail."""

    for key, value in {"LOTTERY_FIGURES": str(tmp_path / "figures"), **env}.items():
        if value:
            monkeypatch.setenv(key, value)
        else:
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("PYTHONPATH", str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    nb = nbformat.read(REPO / "notebooks" / name, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    return outputs, "".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in outputs)


def test_notebook_runs_top_to_bottom(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    table = synthetic_results(tmp_path / "results.csv")
    outputs, text = execute_notebook("init_comparison.ipynb", tmp_path, monkeypatch, LOTTERY_RESULTS=str(table))
    assert "72 rows: 3 starts × 6 seeds × 4 rounds" in text
    assert "8 of 12 (level, pair) comparisons differ significantly" in text  # good vs base and vs same
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 3
    assert (tmp_path / "figures" / "accuracy.svg").is_file()


def test_notebook_defaults_to_a_committed_table_and_takes_one_start(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh clone has no runs/: the notebook reads the committed Wijnja table; a one-start table has no
    pairs to test and says so instead of failing."""

    monkeypatch.delenv("LOTTERY_RESULTS", raising=False)
    monkeypatch.chdir(REPO / "notebooks")
    _, text = execute_notebook("init_comparison.ipynb", tmp_path, monkeypatch)
    assert "1760 rows: 8 starts × 11 seeds × 20 rounds" in text
    one = synthetic_results(tmp_path / "all.csv")
    df = pd.read_csv(one)
    df[df["start"] == "base"].to_csv(tmp_path / "one.csv", index=False)
    _, text = execute_notebook("init_comparison.ipynb", tmp_path, monkeypatch,
                               LOTTERY_RESULTS=str(tmp_path / "one.csv"))
    assert "one start only: no pair of starts to compare" in text
    assert not list((REPO / "results").glob("*/notebook_figures"))  # nothing left in the repository
    # the README's relative example, from the repository root, while the kernel runs elsewhere
    _, text = execute_notebook("init_comparison.ipynb", tmp_path, monkeypatch,
                               LOTTERY_RESULTS="results/frankle2019/results.csv")
    assert "rows: 3 starts × 5 seeds × 16 rounds" in text


def test_learned_starts_notebook_runs_top_to_bottom(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outputs, text = execute_notebook("learned_starts.ipynb", tmp_path, monkeypatch)
    assert text.count("regenerated bit for bit: True") == 3
    assert "15 cells, 105 early-training points" in text
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 2
    assert (tmp_path / "figures" / "learned_starts.png").is_file()
    execute_notebook("learned_starts.ipynb", tmp_path, monkeypatch, LOTTERY_FIGURES="")  # figures: a temp folder
    assert not list((REPO / "results").glob("*/notebook_figures"))  # nothing left in the repository


def test_holm_in_stats_runs_over_the_whole_page() -> None:
    """A difference significant at its level alone is not once the page shows 20 more levels (one family),
    and the Mann–Whitney floor is stated when 5 vs 5 seeds cannot reach significance."""

    base = [0.970, 0.971, 0.972, 0.973, 0.974]

    def table(levels: int) -> pd.DataFrame:
        rows = []
        for r in range(levels):  # level 0: b is 0.25 pp above a (Welch p ≈ 0.04); the other levels: equal
            for start, shift in (("a", 0.0), ("b", 0.0025 if r == 0 else 0.0)):
                for seed, acc in enumerate(base):
                    rows.append({"model": "m", "round": r, "remaining_pct": 100 * 0.8**r, "start": start,
                                 "seed": seed, "test_acc": acc + shift})
        return pd.DataFrame(rows)

    alone = stats.pairwise(table(1))
    assert alone[0]["welch_p"] < 0.05 and alone[0]["significant"]
    crowded = stats.pairwise(table(21))
    assert crowded[0]["welch_p"] == alone[0]["welch_p"] and not crowded[0]["significant"]
    assert "can never be significant" in stats.markdown(crowded) and "21 comparisons" in stats.markdown(crowded)


def test_a_grid_of_methods_gets_its_figure_and_a_grid_of_starts_does_not(tmp_path: Path) -> None:
    from tests.test_literature_frankle2021 import PAPER, pai_table

    df = pai_table(PAPER).assign(start=lambda d: d["control"], scheme="xavier_normal", source="hash", scale=1.0,
                                 steps_to_best=100, best_monitor=0.1, val_acc=0.97, environment="e")
    df.to_csv(tmp_path / "ways.csv", index=False)
    assert plot_main([str(tmp_path / "ways.csv"), "--out", str(tmp_path / "ways")]) == 0
    svg = (tmp_path / "ways" / "methods.svg").read_text()
    for label in ("IMP (n=5)", "snip (n=5)", "synflow (n=5)", "shuffled within each layer", "reinitialised"):
        assert label in svg, label
    table = synthetic_results(tmp_path / "results.csv")
    assert plot_main([str(table), "--out", str(tmp_path / "fig")]) == 0
    assert not (tmp_path / "fig" / "methods.svg").exists()

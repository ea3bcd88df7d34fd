"""The results READMEs: every published claim is checked against the table, and the verdict follows the data.

The rules every page shares, and Frankle & Carbin's page; the other papers' pages are in test_literature_pages.py."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lottery.literature import PAPERS, main, nearest_round
from lottery.literature.frankle2019 import _pn
from lottery.literature.verdicts import (
    Page,
    Test,
    at_least,
    differences,
    directional,
    equivalent,
    every,
    interval,
    mann_whitney_floor,
    sign_test,
    smallest_winning_rate,
    welch,
)
from lottery.literature.wording import rows
from lottery.stats import ALPHA
from scripts.regenerate_pages import main as regenerate
from scripts.regenerate_pages import page_arguments


def fc_table(ticket_gain: float, reinit_drop: float, seeds: int = 5, rounds: int = 16) -> pd.DataFrame:
    """Tickets gain ``ticket_gain`` over dense at mid sparsity; reinit loses ``reinit_drop`` per level ≤ 21 %."""
    rng = np.random.default_rng(0)
    rows = []
    for control in ("ticket", "reinit", "random_prune"):
        for seed in range(seeds):
            for r in range(rounds):
                pct = 100 * (0.8**r * 265_200 + 0.9**r * 1000) / 266_200
                acc = 0.980 + rng.normal(0, 0.0005)
                if control == "ticket" and 5 <= r <= 12:
                    acc += ticket_gain
                if control != "ticket" and pct <= 21.5:
                    acc -= reinit_drop * (r - 6)
                rows.append({"model": "lenet_300_100", "control": control, "seed": seed, "round": r,
                             "remaining_pct": pct, "test_acc_at_best": acc, "test_acc": acc,
                             "epochs_to_best": 2 if control == "ticket" else 4, "start": f"x {control}",
                             "run": f"{control}-{seed}"})
    return pd.DataFrame(rows)


def verdicts(text: str) -> dict[str, str]:
    """published claim → verdict, from a page's claims table."""
    return {line.split(" | ")[0].lstrip("| "): line.rsplit(" | ", 1)[1].rstrip(" |").strip("*")
            for line in text.splitlines() if line.startswith("| ") and " | **" in line}


def test_frankle2019_verdicts_follow_the_data() -> None:
    good = verdicts(PAPERS["frankle2019"](fc_table(ticket_gain=0.01, reinit_drop=0.01)))
    assert good["at ≤ 21 % remaining the ticket beats its random reinitialisation"] == "agrees"
    assert good["tickets beat the dense network by > 0.3 pp at 13.5 %"] == "agrees"
    bad = verdicts(PAPERS["frankle2019"](fc_table(ticket_gain=-0.005, reinit_drop=-0.01)))
    assert bad["tickets beat the dense network by > 0.3 pp at 13.5 %"] == "refuted"
    assert bad["at ≤ 21 % remaining the ticket beats its random reinitialisation"] == "refuted"
    flat = PAPERS["frankle2019"](fc_table(ticket_gain=0.0, reinit_drop=0.0))
    assert "Seeds per column" not in flat  # said only while the columns rest on different seeds
    df = fc_table(ticket_gain=0.0, reinit_drop=0.0)
    fewer = PAPERS["frankle2019"](df[(df["control"] == "ticket") | (df["seed"] < 3)])
    assert "Seeds per column: ticket 5, reinit 3, random_prune 3" in fewer
    # level with its reinit within ±0.05 pp: a 0.25 pp advantage is excluded, which says more than "not detected"
    assert verdicts(flat)["at ≤ 21 % remaining the ticket beats its random reinitialisation"] == "contradicted"
    assert "smallest detectable at n" not in flat  # reinit level with dense is contradicted, not undetected
    near = PAPERS["frankle2019"](fc_table(0.0033, 0.002, seeds=3))  # +0.33 pp against "> 0.3 pp", 3 seeds
    assert verdicts(near)["tickets beat the dense network by > 0.3 pp at 13.5 %"] == "not detected"
    assert "the smallest effect this n detects: " in near


def test_the_frankle2019_page_counts_rows_still_improving_at_the_budgets_end() -> None:
    df = fc_table(0.0, 0.0)  # best epoch 2 for tickets, 4 for controls
    df.attrs["round_length"] = ("epochs", 5)
    assert "ticket 0 of 80 (0 of 45 at ≤ 21 %); reinit 0 of 80 (0 of 45 at ≤ 21 %)" in PAPERS["frankle2019"](df)
    df.attrs["round_length"] = ("epochs", 4)  # now every control row stopped in its round's last epoch
    page = PAPERS["frankle2019"](df)
    assert "ticket 0 of 80 (0 of 45 at ≤ 21 %); reinit 80 of 80 (45 of 45 at ≤ 21 %)" in page
    assert "the last of its 4 epochs" in page
    steps = df.assign(steps_to_best=np.where(df["round"] >= 12, 45_000, 44_999))
    steps.attrs["round_length"] = ("steps", 50_000)  # the last tenth of 50K iterations is the end
    page = PAPERS["frankle2019"](steps)
    assert "ticket 20 of 80 (20 of 45 at ≤ 21 %)" in page and "the last tenth of its 50,000 iterations" in page


UNTIL_29 = "winning tickets stay at or above the dense accuracy down to ≈ 2.9 % and fall below it only after"


@pytest.mark.parametrize(("rounds", "fall_at", "drop", "expected"), [
    (19, 17, 0.01, "agrees"),  # at dense down to 2.9 %, 1 pp below at 2.3 and 1.9 %: both halves hold
    (19, 19, 0.0, "contradicted"),  # level with dense after 2.9 % within ±0.05 pp: the claimed fall is excluded
    (19, 5, 0.01, "refuted"),  # significantly below dense already at 32.9 %
    (16, 16, 0.0, "partly"),  # down to 3.6 % only: half the claim is measured, so at best partly
])
def test_frankle2019_checks_both_halves_of_the_29_percent_claim(rounds: int, fall_at: int, drop: float,
                                                                 expected: str) -> None:
    df = fc_table(0.0, 0.0, rounds=rounds)
    df.loc[(df["control"] == "ticket") & (df["round"] >= fall_at), "test_acc_at_best"] -= drop
    page = PAPERS["frankle2019"](df)
    assert verdicts(page)[UNTIL_29] == expected
    assert ("the fall is not measured" in page) == (rounds == 16)


BACK_TO_DENSE = "tickets are back to the dense accuracy at ≈ 3.6 % (taken as: within ±0.25 pp)"


@pytest.mark.parametrize(("shift", "noise", "expected"), [
    (0.0, 0.0005, "agrees"),  # equal within the margin: TOST shows it
    (0.0075, 0.0005, "not reached"),  # significantly above dense: equality is not reached, however close
    (0.0, 0.02, "inconclusive"),  # too noisy to show either
])
def test_a_claim_of_equality_needs_an_equivalence_test(shift: float, noise: float, expected: str) -> None:
    rng = np.random.default_rng(5)
    df = fc_table(0.0, 0.0)
    last = df["round"] == 15
    df.loc[last & (df["control"] == "ticket"), "test_acc_at_best"] += shift + rng.normal(0, noise, 5)
    assert verdicts(PAPERS["frankle2019"](df))[BACK_TO_DENSE] == expected


def test_holm_runs_over_the_claims_only() -> None:
    """Holm's m is the number of claims: descriptive tables add no tests, and a claim without a p value (one
    seed) is no member of the family."""
    alone = Page()
    t = alone.claim(Test(0.01, 0.03, 5))
    alone.claim(Test(0.0, float("nan"), 1))  # could not be tested: not counted
    alone.close()
    assert alone.size == 1 and t.significant()
    crowded = Page()
    t = crowded.claim(Test(0.01, 0.03, 5))
    for _ in range(4):
        crowded.claim(Test(0.0, 0.5, 5))
    crowded.close()
    assert not t.significant() and t.p_adj == pytest.approx(0.15)
    with pytest.raises(RuntimeError, match="closed"):
        crowded.claim(Test(0.0, 0.5, 5))


def test_a_page_s_power_does_not_depend_on_how_many_levels_it_tables() -> None:
    """The F&C page has 7 claims whether its grid has 16 levels or 19; the per-level columns are confidence
    intervals, not tests."""
    for rounds in (16, 19):
        page = PAPERS["frankle2019"](fc_table(0.01, 0.01, rounds=rounds))
        assert "over the page's 7 claims only" in page and "p = " not in page.split("## The published")[0]
        assert re.search(r"\| \+\d\.\d\d \[[+-]\d\.\d\d, [+-]\d\.\d\d\] \|", page)


def _seeds(values: list[float], base: float = 0.98) -> dict[int, float]:
    return {s: base + v for s, v in enumerate(values)}


DENSE = _seeds([0.0] * 6)


@pytest.mark.parametrize(("diffs", "verdict"), [
    ([0.004, 0.001, 0.003, -0.001, 0.002, 0.0], "agrees"),  # +0.15 pp, within ±0.5 pp
    ([0.012, 0.011, 0.013, 0.010, 0.012, 0.011], "not reached"),  # significantly +1.15 pp
    ([0.02, -0.03, 0.01, -0.02, 0.03, -0.01], "inconclusive"),  # neither
])
def test_a_claim_of_equality_needs_tost(diffs: list[float], verdict: str) -> None:
    page = Page()
    t = page.claim(equivalent(_seeds(diffs), DENSE, 0.005))
    page.close()
    assert t.verdict() == verdict


def test_an_equivalence_is_corrected_with_the_page_s_claims() -> None:
    a = _seeds([0.004, 0.001, 0.003, -0.001, 0.002, 0.0])
    verdict = {}
    for others in (0, 30):
        page = Page()
        same = page.claim(equivalent(a, DENSE, 0.005))
        for _ in range(others):
            page.claim(Test(0.0, 0.5, 6))
        page.close()
        verdict[others] = same.verdict()
    assert same.p < 0.05 / 2  # equivalent within ±0.5 pp alone ...
    assert verdict == {0: "agrees", 30: "inconclusive"}  # ... but not among 31 claims


def test_non_inferiority_without_spread_is_decided_by_the_margin() -> None:
    same = {s: 0.98 for s in range(5)}
    assert at_least({s: 0.979 for s in range(5)}, same, 0.005).p == 0.0  # 0.1 pp worse in every seed
    assert at_least({s: 0.97 for s in range(5)}, same, 0.005).p == 1.0  # 1 pp worse in every seed


def test_a_directional_claim_is_one_sided() -> None:
    up = _seeds([0.002, 0.003, 0.001, 0.0025, 0.0015, 0.002])
    above, below = directional(up, DENSE, True), directional(up, DENSE, False)
    assert above.p < 0.001 and above.p_against == pytest.approx(1 - above.p)
    assert below.p == pytest.approx(above.p_against)
    page = Page()
    page.claim(above), page.claim(below)
    page.close()
    assert (above.verdict(), below.verdict()) == ("agrees", "refuted")


def test_a_claim_s_interval_clears_its_threshold_exactly_when_its_test_holds() -> None:
    """The interval a claim shows is the one its test uses (90 %: the one-sided 95 % bounds), for every kind of
    claim; a 95 % two-sided interval would cross the threshold on claims that agree."""
    rng = np.random.default_rng(0)
    m, crossed = 0.0025, 0
    for _ in range(400):
        n = int(rng.integers(2, 9))
        a, b = _seeds(list(rng.normal(rng.normal(0, 0.004), 0.004, n))), _seeds([0.0] * n)
        up, down = directional(a, b, True), directional(a, b, False)
        assert (up.low > 0) == (up.p < ALPHA) and (down.high < 0) == (down.p < ALPHA)
        same = equivalent(a, b, m)
        assert (-m < same.low and same.high < m) == (same.p < ALPHA)
        assert (at_least(a, b, m).low > -m) == (at_least(a, b, m).p < ALPHA)
        other = list(rng.normal(0.98, 0.004, n))
        apart = welch(list(a.values()), other, True)
        assert (apart.low > 0) == (apart.p < ALPHA)
        crossed += up.p < ALPHA and interval(differences(a, b))[0] <= 0
    assert crossed > 0


@pytest.mark.parametrize(("diffs", "margin", "verdict"), [
    ([0.0002, -0.0001, 0.0001, 0.0, -0.0002, 0.0001], 0.0025, "contradicted"),  # level, and tight: fall excluded
    ([0.0002, -0.0001, 0.0001, 0.0, -0.0002, 0.0001], None, "not detected"),  # no margin: nothing excluded
    ([0.004, -0.005, 0.003, -0.004, 0.005, -0.003], 0.0025, "not detected"),  # too noisy to exclude 0.25 pp
    ([-0.003, -0.004, -0.002, -0.003, -0.0035, -0.0025], 0.0025, "agrees"),  # a real fall
])
def test_data_that_exclude_the_claimed_effect_contradict_it(diffs: list[float], margin: float | None,
                                                            verdict: str) -> None:
    page = Page()
    t = page.claim(directional(_seeds(diffs), DENSE, False, margin=margin))
    page.close()
    assert t.verdict() == verdict


def _member(p: float, against: float = 0.9) -> Test:
    return Test(0.01, p, 5, p_against=against)


@pytest.mark.parametrize(("ps", "summary_p", "verdict"), [
    ([0.04, 0.03, 0.01], None, "agrees"),  # every member at α: no correction among them
    ([0.04, 0.06, 0.01], None, "not detected"),  # one member misses α: the claim's p is 0.06
    ([0.04, 0.06, 0.01], 0.001, "partly"),  # the endpoint holds on the whole, not at each member
    ([0.04, 0.03, 0.01], 0.001, "agrees"),
])
def test_every_level_is_an_intersection_union_test(ps: list[float], summary_p: float | None, verdict: str) -> None:
    page = Page()
    summary = None if summary_p is None else Test(0.01, summary_p, 5, p_against=0.99)
    t = page.claim(every([_member(p) for p in ps], summary=summary))
    page.close()
    assert t.verdict() == verdict


def test_one_member_the_other_way_refutes_an_every_claim() -> None:
    page = Page()
    t = page.claim(every([_member(0.001), _member(0.99, against=0.001)], summary=Test(0.01, 0.001, 5)))
    page.close()
    assert t.verdict() == "refuted"  # 0.001 × 2 members < α
    page = Page()
    t = page.claim(every([_member(0.001), _member(0.99, against=0.03)], summary=Test(0.01, 0.001, 5)))
    page.close()
    assert t.verdict() == "partly"  # 0.03 × 2 members: not significantly the other way


@pytest.mark.parametrize(("measured", "named", "verdict"), [(2, 2, "agrees"), (2, 4, "partly"), (1, 4, "partly"),
                                                            (0, 4, "not measured")])
def test_an_unmeasured_member_never_counts_for_the_claim(measured: int, named: int, verdict: str) -> None:
    members = [_member(0.001)] * measured + [Test(float("nan"), float("nan"), 0)] * (named - measured)
    page = Page()
    t = page.claim(every(members, named))
    page.close()
    assert t.verdict() == verdict


def test_a_threshold_claim_states_the_detectable_effect_not_the_margin_above_it() -> None:
    up = _seeds([0.004, 0.002, 0.005, 0.001, 0.003, 0.006])  # +0.35 pp, noisy: not above 0.3 pp
    page = Page()
    t = page.claim(directional(up, DENSE, True, 0.003))
    page.close()
    (_, said, verdict), = rows([("beats dense by > 0.3 pp", "x", t)], page, 0.0025)
    effect = float(re.search(r"the smallest effect this n detects: (\d\.\d\d) pp", said).group(1))
    assert verdict == "not detected" and effect > 0.3


def test_a_win_count_is_one_sided_and_a_claim_of_the_page() -> None:
    assert smallest_winning_rate(15) == pytest.approx(12 / 15)  # one-sided binomial, α = 0.05: 12 of 15
    assert smallest_winning_rate(15, claims=104) == 1.0  # among 104 claims only 15 of 15 would do
    page = Page()
    wins = page.claim(sign_test(12, 15))
    for _ in range(3):
        page.claim(sign_test(8, 15))
    page.close()
    assert wins.p < 0.05 and not wins.significant() and wins.diff == pytest.approx(0.3)
    few = Page()
    lost = few.claim(sign_test(2, 15))
    few.close()
    assert lost.verdict() == "refuted"


def test_mann_whitney_floor_is_said_where_it_applies() -> None:
    note = mann_whitney_floor(5, 5, 38)
    assert note is not None and "0.0079" in note and "38 claims" in note
    assert mann_whitney_floor(5, 5, 3) is None  # 3 × 0.0079 < 0.05: it could be significant
    assert mann_whitney_floor(11, 11, 38) is None


@pytest.mark.parametrize(("target", "expected"), [(100, 0), (21.1, 7), (3.6, 15), (0.01, None)])
def test_nearest_round(target: float, expected: int | None) -> None:
    assert nearest_round(fc_table(0, 0), target) == expected


def test_a_missing_p_value_says_why() -> None:
    assert _pn(Test(0.0, float("nan"), 1)) == "no test at n = 1"
    assert _pn(Test(0.0, float("nan"), 5)) == "no test: equal in every seed"


def test_one_seed_tests_no_claim_and_says_so() -> None:
    page = PAPERS["frankle2019"](fc_table(ticket_gain=0.01, reinit_drop=0.01, seeds=1))
    assert set(verdicts(page).values()) == {"not measured"}
    assert "no test at n = 1" in page and "nan" not in page.split("## The published")[1]
    five = PAPERS["frankle2019"](fc_table(ticket_gain=0.01, reinit_drop=0.01, seeds=5))
    assert "p_holm = " in five and "no test at n = 1" not in five


RESULTS = Path(__file__).resolve().parents[1] / "results"


@pytest.mark.parametrize("page", sorted(p.parent.name for p in RESULTS.glob("*/README.md")))
def test_every_committed_results_page_regenerates_byte_identical(page: str, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Each results README names the command that wrote it; run from the repository, it writes the same bytes
    (so no page is edited by hand, and a change to the verdict rules shows up as a failing page here:
    ``python scripts/regenerate_pages.py`` rewrites them)."""
    readme = RESULTS / page / "README.md"
    arguments = page_arguments(readme)
    assert arguments, f"{readme} does not say how it was written"
    monkeypatch.chdir(RESULTS.parent)
    assert main([*arguments, "--out", str(tmp_path / "README.md")]) == 0
    assert (tmp_path / "README.md").read_text() == readme.read_text()


def test_regenerate_pages_rewrites_a_stale_page_and_check_only_names_it(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    page = (RESULTS / "generative" / "README.md").read_text()
    stale = tmp_path / "results" / "generative" / "README.md"
    stale.parent.mkdir(parents=True)
    stale.write_text(page.replace("**refuted**", "**agrees**"))
    (tmp_path / "results" / "notes").mkdir()
    (tmp_path / "results" / "notes" / "README.md").write_text("# written by hand\n")
    monkeypatch.chdir(RESULTS.parent)
    assert regenerate(["--results", str(tmp_path / "results"), "--check"]) == 1
    assert stale.read_text() != page  # --check writes nothing
    assert regenerate(["--results", str(tmp_path / "results")]) == 0
    assert stale.read_text() == page and (tmp_path / "results" / "notes" / "README.md").read_text() == \
        "# written by hand\n"
    assert regenerate(["--results", str(tmp_path / "results"), "--check"]) == 0


def test_a_page_reads_its_grid_from_the_tables_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's generic form, without --grid, writes the page of the grid that made the table (the F&C
    page of the full-budget table is not the 5-epoch grid's), from the repository or from elsewhere."""
    page = (RESULTS / "frankle2019_full" / "README.md").read_text()
    monkeypatch.chdir(RESULTS.parent)
    assert main(["frankle2019", "results/frankle2019_full/results.csv", "--out", str(tmp_path / "here.md")]) == 0
    assert (tmp_path / "here.md").read_text() == page
    monkeypatch.chdir(tmp_path)
    assert main(["frankle2019", str(RESULTS / "frankle2019_full" / "results.csv"), "--out", "there.md"]) == 0
    assert "the last of its 5 epochs" not in (tmp_path / "there.md").read_text()
    assert (tmp_path / "there.md").read_text().count("50,000") == page.count("50,000")

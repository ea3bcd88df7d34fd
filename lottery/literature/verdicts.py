"""The rules a results page's verdicts follow, so that no verdict says more than its statistics.

- A page's tests form one family: Holm's correction runs over every p value the page shows (``Page``),
  equivalence and non-inferiority tests included.
- A directional claim *agrees* when the effect is significant in its direction, is *refuted* when it is
  significant the other way, and is *not detected* otherwise, with the smallest difference this n could
  have detected (80 % power): "no effect detected" is never "refuted".
- A claim of equality needs an equivalence test (TOST, margin stated): *agrees* when the difference lies
  within the margin, *not reached* when it is significantly different, *inconclusive* when neither.
- A claim about a family (every level, every start, every pair) is checked on every member: *agrees* only if
  every member does, *refuted* if any member is refuted, else *partly* with the counts.
- Independent units are seeds (one number per seed and level, or per cell), never (seed, level) rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from lottery.stats import ALPHA, holm

POWER = 0.8
AGREES, REFUTED, NOT_DETECTED = "agrees", "refuted", "not detected"
NOT_REACHED, INCONCLUSIVE, PARTLY, NOT_MEASURED = "not reached", "inconclusive", "partly", "not measured"
CONTRADICTED = "contradicted"  # not significant either way, but the data exclude the claimed effect (margin)
VERDICTS = (AGREES, PARTLY, NOT_DETECTED, INCONCLUSIVE, NOT_REACHED, CONTRADICTED, REFUTED, NOT_MEASURED)
# sources whose draws ignore the seed: their "seeds" are one start trained on several data orders (n = 1 start)
SEED_FREE_SOURCES = ("sobol-paper",)


@dataclass
class Test:
    """One comparison: mean difference (a − b), its raw p, the number of independent units, and the p
    after Holm's correction over the page (set by ``Page.close``)."""

    diff: float
    p: float
    n: int
    what: str = "paired t"
    p_adj: float = math.nan

    def significant(self) -> bool:
        return not math.isnan(self.p_adj) and self.p_adj < ALPHA


class Page:
    """Every test shown on one page, corrected together: tests are added while measuring, then ``close``."""

    def __init__(self) -> None:
        self.tests: list[Test] = []
        self.closed = False

    def add(self, test: Test) -> Test:
        if self.closed:
            raise RuntimeError("the page's family is closed; add every test before reading adjusted p values")
        self.tests.append(test)
        return test

    def close(self) -> None:
        for t, p in zip(self.tests, holm([t.p for t in self.tests]), strict=True):
            t.p_adj = p
        self.closed = True

    @property
    def size(self) -> int:
        return sum(not math.isnan(t.p) for t in self.tests)


def paired_t(a: dict[int, float], b: dict[int, float], shift: float = 0.0) -> Test:
    """Mean of a − b over the seeds both have; two-sided paired t of a − b = ``shift``."""
    d = _differences(a, b)
    if len(d) < 2 or float(np.std(d)) == 0.0:
        return Test(float(d.mean()) if len(d) else math.nan, math.nan, len(d))
    return Test(float(d.mean()), float(sps.ttest_1samp(d, shift).pvalue), len(d))


def welch_t(a: Sequence[float], b: Sequence[float]) -> Test:
    x, y = np.asarray(a, float), np.asarray(b, float)
    diff = float(x.mean() - y.mean()) if len(x) and len(y) else math.nan
    if len(x) < 2 or len(y) < 2 or (x.std() == 0 and y.std() == 0):
        return Test(diff, math.nan, min(len(x), len(y)), "Welch t")
    return Test(diff, float(sps.ttest_ind(x, y, equal_var=False).pvalue), min(len(x), len(y)), "Welch t")


def tost_paired(a: dict[int, float], b: dict[int, float], margin: float) -> Test:
    """Two one-sided tests of |mean(a − b)| < ``margin`` over shared seeds (p: the larger one-sided p). A test
    like any other: its p joins the page's Holm family, so an equivalence is not easier to claim than a
    difference."""
    d = _differences(a, b)
    diff = float(d.mean()) if len(d) else math.nan
    if len(d) < 2:
        return Test(diff, math.nan, len(d), "TOST")
    if float(np.std(d)) == 0.0:
        return Test(diff, 0.0 if abs(diff) < margin else 1.0, len(d), "TOST")
    lower = sps.ttest_1samp(d, -margin, alternative="greater").pvalue
    upper = sps.ttest_1samp(d, margin, alternative="less").pvalue
    return Test(diff, float(max(lower, upper)), len(d), "TOST")


def noninferior_paired(a: dict[int, float], b: dict[int, float], margin: float) -> Test:
    """One-sided paired t of a − b > −``margin``: a is not worse than b by the margin or more (joins the
    page's family like any other test)."""
    d = _differences(a, b)
    diff = float(d.mean()) if len(d) else math.nan
    if len(d) < 2:
        return Test(diff, math.nan, len(d), "non-inferiority")
    if float(np.std(d)) == 0.0:  # every seed the same difference: decided without a t statistic, as in TOST
        return Test(diff, 0.0 if diff > -margin else 1.0, len(d), "non-inferiority")
    return Test(diff, float(sps.ttest_1samp(d, -margin, alternative="greater").pvalue), len(d), "non-inferiority")


def _differences(a: dict[int, float], b: dict[int, float]) -> np.ndarray:
    shared = sorted(set(a) & set(b))
    return np.array([a[s] - b[s] for s in shared])


def detectable(sd: float, n: int, tests: int = 1, groups: int = 1) -> float:
    """The smallest mean difference a two-sided t-test detects with 80 % power at α / ``tests`` (Holm's
    first step): paired on ``n`` units with differences of spread ``sd`` (``groups=1``), or two groups of
    ``n`` each with spread ``sd`` (``groups=2``, Welch's test as a pooled-variance approximation)."""
    if n < 2 or not math.isfinite(sd):
        return math.nan
    df = n - 1 if groups == 1 else 2 * n - 2
    alpha = ALPHA / max(1, tests)
    scale = math.sqrt(1 / n) if groups == 1 else math.sqrt(2 / n)
    return float((sps.t.ppf(1 - alpha / 2, df) + sps.t.ppf(POWER, df)) * sd * scale)


def directional(test: Test, expect_positive: bool, threshold: float = 0.0, against: Test | None = None) -> str:
    """Agrees / refuted / not detected for a claim that a − b is above (or below) ``threshold``. ``against``: a
    non-inferiority test the other way (for a claim that a falls below b: a is not below b by the margin); when
    the difference is not significant but that test is, the data exclude the claimed effect: *contradicted*,
    not merely *not detected*."""
    if math.isnan(test.p_adj):
        return NOT_MEASURED
    if not test.significant():
        return CONTRADICTED if against is not None and against.significant() else NOT_DETECTED
    above = test.diff > threshold
    return AGREES if above == expect_positive else REFUTED


def equality(test: Test, tost: Test) -> str:
    """A claim that a and b are equal: a significant difference means not reached; else the equivalence test
    (``tost_paired``, Holm-corrected with the page) decides."""
    if math.isnan(test.p_adj) and math.isnan(tost.p_adj):
        return NOT_MEASURED
    if test.significant():
        return NOT_REACHED
    return AGREES if tost.significant() else INCONCLUSIVE


def at_least(test: Test, no_worse: Test) -> str:
    """"a ≥ b": refuted when significantly below, agrees when significantly above or non-inferior within the
    margin (``no_worse``: ``noninferior_paired``), inconclusive otherwise."""
    if math.isnan(test.p_adj) and math.isnan(no_worse.p_adj):
        return NOT_MEASURED
    if test.significant():
        return AGREES if test.diff > 0 else REFUTED
    return AGREES if no_worse.significant() else INCONCLUSIVE


def family(verdicts: Sequence[str], members: int | None = None) -> str:
    """A claim about every member of a family holds only if it holds for each. ``members``: how many the claim
    names (the paper's starts, widths, pairs); a verdict that holds for the measured ones while others are
    unmeasured is at best *partly*: an unmeasured member never counts for the claim."""
    measured = [v for v in verdicts if v != NOT_MEASURED]
    if not measured:
        return NOT_MEASURED
    if members is not None and len(measured) < members:
        whole = family(measured)
        return PARTLY if whole == AGREES else whole
    if REFUTED in measured:
        return REFUTED
    if CONTRADICTED in measured:
        return CONTRADICTED
    if NOT_REACHED in measured:
        return NOT_REACHED
    if all(v == AGREES for v in measured):
        return AGREES
    return PARTLY if AGREES in measured else measured[0] if len(set(measured)) == 1 else INCONCLUSIVE


def sign_test(wins: int, n: int) -> Test:
    """Two-sided binomial test of a win rate against ½ (``diff``: the win rate − ½), a test like any other on
    its page (Holm runs over it too)."""
    if n == 0:
        return Test(math.nan, math.nan, 0, "sign test")
    return Test(wins / n - 0.5, float(sps.binomtest(wins, n).pvalue), n, "sign test")


def smallest_winning_rate(n: int, tests: int = 1) -> float:
    """The lowest win rate over ``n`` independent units that a two-sided sign test calls significant at
    α / ``tests`` (Holm's first step)."""
    for k in range(math.ceil(n / 2), n + 1):
        if sps.binomtest(k, n).pvalue < ALPHA / max(1, tests):
            return k / n
    return math.nan


def mann_whitney_floor(n_a: int, n_b: int, tests: int) -> str | None:
    """A note when Mann–Whitney cannot reach significance after Holm over ``tests`` at these sample sizes."""
    if n_a < 1 or n_b < 1:
        return None
    smallest = 2 / math.comb(n_a + n_b, n_a)
    if smallest * tests <= ALPHA:
        return None
    return (f"With {n_a} vs {n_b} seeds Mann–Whitney's smallest possible two-sided p is {smallest:.2g}, so after "
            f"Holm over this page's {tests} tests it can never be significant; the verdicts use t-tests.")


def render(verdict: str) -> str:
    return f"**{verdict}**"


def claims_table(claims: Sequence[tuple[str, str, str]]) -> list[str]:
    lines = ["| published | ours | verdict |", "|---|---|---|"]
    return lines + [f"| {p} | {o} | {render(v)} |" for p, o, v in claims]


def legend(margin_pp: float) -> str:
    return (f"Verdicts: *agrees* (significant in the claim's direction, or equivalent within ±{margin_pp:g} pp by "
            "TOST for a claim of equality), *refuted* (significant the other way), *not detected* (no significant "
            "effect; the smallest detectable difference is given), *contradicted* (no significant effect, and a "
            f"non-inferiority test excludes the claimed one beyond {margin_pp:g} pp), *not reached* (a claim of "
            "equality where the "
            "difference is significant), *inconclusive* (neither different nor shown equivalent), *partly* (a "
            "family claim that holds for some members only). p values are Holm-corrected over every test on this "
            f"page; the units are seeds. α = {ALPHA}.")

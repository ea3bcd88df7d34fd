"""The rules a results page's verdicts follow, fixed before the data are read, so that no verdict says more (or
less) than its statistics.

- **One primary test per published claim**, with the claim's endpoint, direction and margin. Holm's correction
  runs over the page's claims only (``Page.claim``); the per-level tables are descriptive and show 95 %
  confidence intervals, never p values, so a page's power does not depend on how many tables it shows.
- **A claim's interval matches its test**: 90 % two-sided (``CLAIM_CONFIDENCE``), whose ends are the one-sided
  95 % bounds that the claims' one-sided tests at α = 0.05 use (directional, non-inferiority, each side of
  TOST, and "the data exclude the claimed effect"): a claim holds at α before Holm exactly when its interval
  lies beyond the threshold. A 95 % two-sided interval could cross the threshold while the test agrees.
- A **directional** claim (a − b above or below a threshold) is tested one-sided: *agrees* when significant in
  its direction; *refuted* when significant the other way; *contradicted* when neither, but the data exclude
  the claimed effect (a difference of at least the margin in the claim's direction); *not detected*
  otherwise, with the smallest effect this n would detect. "Not detected" is never "refuted".
- A claim of **equality** needs an equivalence test (TOST, margin stated): *agrees* when equivalent, *not
  reached* when significantly different, *inconclusive* when neither. A claim "a ≥ b" is a non-inferiority
  test within the margin (*refuted* when a is significantly below b by the margin or more).
- A claim about **every** level, start or pair is an intersection–union test: each member is tested at α, with
  no correction among them, and the claim's p is the largest member's. It is refuted by a member that is
  significantly the other way (Bonferroni over the members). A family that names members the grid did not
  measure is at best *partly*: an unmeasured member never counts for the claim.
- A verdict against a claim (refuted, contradicted, not reached) is held to Bonferroni over the page's claims.
- Independent units are seeds (one number per seed and level, or per cell), never (seed, level) rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

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
DIRECTIONAL, EQUALITY, AT_LEAST = "directional", "equality", "at least"
# ±0.25 pp: what "≈", "≥", "back to" and "falls below" tolerate on every page, about one seed-to-seed standard
# deviation of the dense LeNet-300-100 on MNIST (0.16–0.25 pp across these grids): a smaller difference is one a
# rerun with another seed could undo
MARGIN = 0.0025
CLAIM_CONFIDENCE = 1 - 2 * ALPHA  # the interval whose ends are the one-sided tests' bounds at α


@dataclass
class Test:
    """A claim's primary test. ``diff``: the endpoint (mean a − b over the units); ``p``: for the claim;
    ``p_against``: for the opposite (refuted, or not reached for equality); ``p_excludes``: that the claimed
    effect (the margin) is excluded (contradicted). ``low``/``high``: the endpoint's confidence interval, 90 %
    for a claim (``CLAIM_CONFIDENCE``, matching its one-sided tests at α), 95 % for a descriptive table.
    The ``_adj`` values are set by ``Page.close``; ``members``/``named``: measured and named family members."""

    diff: float
    p: float
    n: int
    what: str = "paired t"
    kind: str = DIRECTIONAL
    p_against: float = math.nan
    p_excludes: float = math.nan
    low: float = math.nan
    high: float = math.nan
    members: int = 1
    named: int = 1
    sd: float = math.nan  # spread of the unit differences (for the smallest detectable effect)
    threshold: float = 0.0
    each: bool = True  # every member of an intersection–union claim holds at α
    p_adj: float = math.nan
    against_adj: float = math.nan
    excludes_adj: float = math.nan
    parts: list[Test] = field(default_factory=list, repr=False)
    __test__ = False  # not a pytest test class

    def significant(self) -> bool:
        return not math.isnan(self.p_adj) and self.p_adj < ALPHA

    def verdict(self) -> str:
        """What the claim's primary test says, by the rules above (after ``Page.close``)."""
        if math.isnan(self.p_adj):
            return NOT_MEASURED
        whole = self.members >= self.named and self.each
        if self.significant() and whole:
            return AGREES
        if self.against_adj < ALPHA:  # for a family claim: one member significantly the other way
            return NOT_REACHED if self.kind == EQUALITY else REFUTED
        if self.excludes_adj < ALPHA:
            return CONTRADICTED
        if self.significant():
            return PARTLY
        return INCONCLUSIVE if self.kind in (EQUALITY, AT_LEAST) else NOT_DETECTED


class Page:
    """A page's claims, corrected together: each claim's primary test is added, then ``close``."""

    def __init__(self) -> None:
        self.tests: list[Test] = []
        self.closed = False

    def claim(self, test: Test) -> Test:
        if self.closed:
            raise RuntimeError("the page's family is closed; add every claim before reading adjusted p values")
        self.tests.append(test)
        return test

    def close(self) -> None:
        for t, p in zip(self.tests, holm([t.p for t in self.tests]), strict=True):
            t.p_adj = p
            t.against_adj = min(1.0, t.p_against * self.size) if self.size else math.nan
            t.excludes_adj = min(1.0, t.p_excludes * self.size) if self.size else math.nan
        self.closed = True

    @property
    def size(self) -> int:
        """Holm's m: the claims that have a p value (a claim that could not be tested is no member)."""
        return sum(not math.isnan(t.p) for t in self.tests)


def differences(a: dict[int, float], b: dict[int, float]) -> np.ndarray:
    shared = sorted(set(a) & set(b))
    return np.array([a[s] - b[s] for s in shared], dtype=float)


def _sd(d: np.ndarray) -> float:
    return float(np.std(d, ddof=1)) if len(d) > 1 else math.nan


def _one_sided(d: np.ndarray, value: float, greater: bool) -> float:
    """p of mean(d) > value (``greater``) or < value; every unit the same: decided without a t statistic."""
    if len(d) < 2:
        return math.nan
    if float(np.std(d)) == 0.0:
        return 0.0 if (d[0] > value if greater else d[0] < value) else 1.0
    return float(sps.ttest_1samp(d, value, alternative="greater" if greater else "less").pvalue)


def interval(d: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided ``confidence`` interval of the mean of ``d`` (t): 95 % for a table, ``CLAIM_CONFIDENCE`` for
    a claim."""
    if len(d) < 2:
        return math.nan, math.nan
    half = float(sps.t.ppf(1 - (1 - confidence) / 2, len(d) - 1) * np.std(d, ddof=1) / math.sqrt(len(d)))
    return float(d.mean()) - half, float(d.mean()) + half


def describe(a: dict[int, float], b: dict[int, float]) -> Test:
    """The mean paired difference with its 95 % CI, for a descriptive table (no p value, no family)."""
    d = differences(a, b)
    low, high = interval(d)
    return Test(float(d.mean()) if len(d) else math.nan, math.nan, len(d), "95 % CI", low=low, high=high)


def directional(a: dict[int, float], b: dict[int, float], positive: bool, threshold: float = 0.0,
                margin: float | None = None) -> Test:
    """The claim a − b > ``threshold`` (``positive``) or < it: one-sided paired t. ``margin``: the smallest
    effect the claim means; when given, the data contradict the claim if they exclude a difference of at least
    ``margin`` beyond the threshold in the claim's direction."""
    d = differences(a, b)
    sign = 1.0 if positive else -1.0
    low, high = interval(d, CLAIM_CONFIDENCE)
    excludes = math.nan if margin is None else _one_sided(d, threshold + sign * margin, not positive)
    return Test(float(d.mean()) if len(d) else math.nan, _one_sided(d, threshold, positive), len(d),
                "one-sided paired t", DIRECTIONAL, _one_sided(d, threshold, not positive), excludes, low, high,
                sd=_sd(d), threshold=threshold)


def equivalent(a: dict[int, float], b: dict[int, float], margin: float) -> Test:
    """The claim a ≈ b: TOST within ±``margin`` (p: the larger one-sided p); against: a two-sided paired t
    (significantly different: not reached)."""
    d = differences(a, b)
    low, high = interval(d, CLAIM_CONFIDENCE)
    tost = max(_one_sided(d, -margin, True), _one_sided(d, margin, False)) if len(d) >= 2 else math.nan
    differ = (2 * min(_one_sided(d, 0.0, True), _one_sided(d, 0.0, False)) if len(d) >= 2 and np.std(d) > 0
              else math.nan)
    return Test(float(d.mean()) if len(d) else math.nan, tost, len(d), "TOST", EQUALITY, min(1.0, differ),
                math.nan, low, high, sd=_sd(d))


def at_least(a: dict[int, float], b: dict[int, float], margin: float) -> Test:
    """The claim a ≥ b: non-inferiority, a − b > −``margin`` (one-sided); refuted when a − b < −``margin``."""
    d = differences(a, b)
    low, high = interval(d, CLAIM_CONFIDENCE)
    return Test(float(d.mean()) if len(d) else math.nan, _one_sided(d, -margin, True), len(d), "non-inferiority",
                AT_LEAST, _one_sided(d, -margin, False), math.nan, low, high, sd=_sd(d))


def welch(a: Sequence[float], b: Sequence[float], positive: bool) -> Test:
    """The claim mean(a) > mean(b) (``positive``) or < for two unpaired groups (cells pooled over starts)."""
    x, y = np.asarray(a, float), np.asarray(b, float)
    diff = float(x.mean() - y.mean()) if len(x) and len(y) else math.nan
    if len(x) < 2 or len(y) < 2 or (x.std() == 0 and y.std() == 0):
        return Test(diff, math.nan, min(len(x), len(y)), "one-sided Welch t")
    p = {alt: float(sps.ttest_ind(x, y, equal_var=False, alternative=alt).pvalue) for alt in ("greater", "less")}
    ci = sps.ttest_ind(x, y, equal_var=False).confidence_interval(CLAIM_CONFIDENCE)
    return Test(diff, p["greater" if positive else "less"], min(len(x), len(y)), "one-sided Welch t", DIRECTIONAL,
                p["less" if positive else "greater"], math.nan, float(ci.low), float(ci.high),
                sd=math.sqrt((x.var(ddof=1) + y.var(ddof=1)) / 2))


def every(members: Sequence[Test], named: int | None = None, summary: Test | None = None) -> Test:
    """A claim that holds for every member (level, start, pair): an intersection–union test. Each member is
    tested at α, with no correction among them; the claim's p is the largest member p, or, with ``summary``
    (the per-seed mean over the members, the claim's endpoint), the summary's p, the claim then agreeing only
    if every member also holds at α (else *partly*: on the whole, not at each member). One member significantly
    the other way refutes it (Bonferroni over the members). ``named``: how many members the claim names
    (unmeasured ones make it *partly* at best)."""
    measured = [t for t in members if not math.isnan(t.p)]
    k = max(1, len(measured))
    kind = measured[0].kind if measured and len({t.kind for t in measured}) == 1 else DIRECTIONAL
    if not measured:
        return Test(math.nan, math.nan, 0, "intersection–union", kind, members=0, named=named or len(members),
                    parts=list(members))

    def worst(values: list[float], also: float = math.nan) -> float:
        values = [v for v in values if not math.isnan(v)]
        bonferroni = min(1.0, k * min(values)) if values else math.nan
        return float(np.nanmin([bonferroni, also])) if values or not math.isnan(also) else math.nan

    slack = [t.p for t in measured]
    weakest = measured[int(np.argmax(slack))]
    head = summary if summary is not None and not math.isnan(summary.p) else weakest
    return Test(float(head.diff), summary.p if summary is not None else max(slack), min(t.n for t in measured),
                f"intersection–union of {head.what}", kind,
                worst([t.p_against for t in measured], summary.p_against if summary is not None else math.nan),
                worst([t.p_excludes for t in measured], summary.p_excludes if summary is not None else math.nan),
                head.low, head.high, members=sum(t.members >= t.named for t in measured), named=named or len(members),
                sd=head.sd, threshold=head.threshold, each=all(t.p < ALPHA and t.each for t in measured),
                parts=list(members))


def sign_test(wins: int, n: int) -> Test:
    """The claim that a wins more often than chance: one-sided binomial test of the win rate against ½
    (``diff``: the win rate − ½; against: fewer wins than chance)."""
    if n == 0:
        return Test(math.nan, math.nan, 0, "sign test")
    return Test(wins / n - 0.5, float(sps.binomtest(wins, n, alternative="greater").pvalue), n, "sign test",
                DIRECTIONAL, float(sps.binomtest(wins, n, alternative="less").pvalue))


def detectable(sd: float, n: int, claims: int = 1, groups: int = 1) -> float:
    """The smallest effect (beyond a claim's threshold) that a one-sided t-test detects with 80 % power at
    α / ``claims`` (Holm's first step over the page's claims): paired on ``n`` units with differences of
    spread ``sd`` (``groups=1``), or two groups of ``n`` each (``groups=2``, a pooled-variance
    approximation to Welch's test)."""
    if n < 2 or not math.isfinite(sd):
        return math.nan
    df = n - 1 if groups == 1 else 2 * n - 2
    scale = math.sqrt(1 / n) if groups == 1 else math.sqrt(2 / n)
    return float((sps.t.ppf(1 - ALPHA / max(1, claims), df) + sps.t.ppf(POWER, df)) * sd * scale)


def smallest_winning_rate(n: int, claims: int = 1) -> float:
    """The lowest win rate over ``n`` units that the one-sided sign test calls significant at α / ``claims``."""
    for k in range(math.ceil(n / 2), n + 1):
        if sps.binomtest(k, n, alternative="greater").pvalue < ALPHA / max(1, claims):
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
            f"Holm over this page's {tests} claims it can never be significant; the verdicts use t-tests.")

"""How a page words its claims: the claims table, the verdicts' legend, confidence intervals as text, and the
Holm-adjusted p values filled into a claim's text once the page is closed (the rules are in ``verdicts``)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from lottery.literature.verdicts import CLAIM_CONFIDENCE, CONTRADICTED, NOT_DETECTED, Page, Test, detectable
from lottery.stats import ALPHA, p_text


def ci_text(t: Test, digits: int = 2) -> str:
    """``+0.74 [+0.65, +0.83]`` in pp: a table's 95 % interval, or a claim's 90 % (``verdicts.CLAIM_CONFIDENCE``)."""
    if math.isnan(t.diff):
        return "–"
    if math.isnan(t.low):
        return f"{100 * t.diff:+.{digits}f}"
    return f"{100 * t.diff:+.{digits}f} [{100 * t.low:+.{digits}f}, {100 * t.high:+.{digits}f}]"


# written into a claim's text while measuring, filled in once the page is closed
P_HOLM, P_AGAINST = "⟨p_holm⟩", "⟨p_against⟩"


def rows(claims: Sequence[tuple[str, str, Test]], page: Page, margin: float) -> list[tuple[str, str, str]]:
    """(published, ours, verdict) for ``claims_table``, after ``page.close()``: the Holm-adjusted p values
    filled in, and what each verdict leaves open said (the smallest detectable effect, the excluded one)."""
    out = []
    for published, said, t in claims:
        said = said.replace(P_HOLM, p_text(t.p_adj)).replace(P_AGAINST, p_text(t.against_adj))
        v = t.verdict()
        if v == NOT_DETECTED and t.n >= 2 and math.isfinite(t.sd):
            effect = detectable(t.sd, t.n, page.size, 2 if "Welch" in t.what else 1)
            said += (f"; the smallest effect this n detects: {100 * (abs(t.threshold) + effect):.2f} pp"
                     if t.threshold else f"; smallest detectable at n = {t.n}: {100 * effect:.2f} pp")
        if v == CONTRADICTED:
            said += f"; the data exclude a difference of {100 * margin:g} pp in the claim's direction"
        out.append((published, said, v))
    return out


def render(verdict: str) -> str:
    return f"**{verdict}**"


def claims_table(claims: Sequence[tuple[str, str, str]]) -> list[str]:
    lines = ["| published | ours | verdict |", "|---|---|---|"]
    return lines + [f"| {p} | {o} | {render(v)} |" for p, o, v in claims]


def margin_reason(here: str = "") -> str:
    """Why the margin is what it is, with the page's own measured spread (``here``, e.g. "0.16 pp here")."""
    return ("about one seed-to-seed standard deviation of the dense network on MNIST, 0.16–0.25 pp across these "
            f"grids{', ' + here if here else ''}")


def legend(margin_pp: float, why: str, claims: int) -> str:
    """The rules as a page states them, with its margin and the reason for it."""
    return ("Each claim has one primary test, fixed before the data were read; Holm's correction runs over the "
            f"page's {claims} claim{'' if claims == 1 else 's'} only, and the tables above are descriptive (95 % "
            f"confidence intervals). A claim's interval is {100 * CLAIM_CONFIDENCE:g} %: its ends are the one-sided "
            f"{100 * (1 - ALPHA):g} % bounds its tests use at α, so it clears the claim's threshold (or, for TOST, "
            "lies within the margin) exactly when the test holds at α before Holm. "
            f"Margin ±{margin_pp:g} pp ({why}). Verdicts: *agrees* (significant in the "
            "claim's direction, "
            "equivalent by TOST for a claim of equality, non-inferior for a claim of ≥; a claim \"at every level\" "
            "must hold at each level at α, an intersection–union test), *refuted* (significant the other way), "
            "*contradicted* (not significant either way, but the data exclude the claimed effect of at least the "
            "margin), *not detected* (neither; the smallest detectable effect is given), *not reached* (equality "
            "claimed, a significant difference found), *inconclusive* (neither different nor shown equivalent or "
            "non-inferior), *partly* (holds on the whole but not at each level, or for the measured members of "
            f"a family claim only). Verdicts against a claim are held to Bonferroni over the claims. Units are seeds; "
            f"α = {ALPHA}.")

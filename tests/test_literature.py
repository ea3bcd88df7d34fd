"""The results READMEs: every published claim is checked against the table, and the verdict follows the data."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lottery.literature import PAPERS, main, nearest_round


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
                             "best_epoch": 2 if control == "ticket" else 4, "start": f"x {control}",
                             "run": f"{control}-{seed}"})
    return pd.DataFrame(rows)


def test_frankle2019_verdicts_follow_the_data() -> None:
    good = PAPERS["frankle2019"](fc_table(ticket_gain=0.005, reinit_drop=0.01))
    assert "| tickets beat the dense network by > 0.3 pp at 13.5 % |" in good
    lines = {line.split(" | ")[0].lstrip("| "): line for line in good.splitlines() if line.startswith("| ")}
    assert lines["tickets beat the dense network by > 0.3 pp at 13.5 %"].endswith("**agrees** |")
    assert lines["at ≤ 21 % remaining the ticket beats its random reinitialisation"].endswith("**agrees** |")
    assert "at 9 of 9 levels" in lines["at ≤ 21 % remaining the ticket beats its random reinitialisation"]
    bad = PAPERS["frankle2019"](fc_table(ticket_gain=-0.005, reinit_drop=-0.01))
    lines = {line.split(" | ")[0].lstrip("| "): line for line in bad.splitlines() if line.startswith("| ")}
    assert lines["tickets beat the dense network by > 0.3 pp at 13.5 %"].endswith("**does not agree** |")
    assert lines["at ≤ 21 % remaining the ticket beats its random reinitialisation"].endswith("**does not agree** |")
    assert "at 0 of 9 levels" in lines["at ≤ 21 % remaining the ticket beats its random reinitialisation"]


def test_wijnja2020_reports_partial_grids_as_not_measured(tmp_path: Path) -> None:
    df = fc_table(0.0, 0.0, rounds=20)
    df = df[df["control"] == "ticket"].assign(scheme="xavier_normal", scale=1.0, source="hash",
                                               start="xavier_normal/hash")
    text = PAPERS["wijnja2020"](df)
    assert "5 finished cells of the grid's 88" in text
    assert "| below 3.5 % Xavier beats Kaiming | Xavier or Kaiming cells not finished yet | not measured |" in text
    path = tmp_path / "results.csv"
    df.to_csv(path, index=False)
    assert main(["wijnja2020", str(path)]) == 0 and (tmp_path / "README.md").read_text() == text
    assert main(["nature2031", str(path)]) == 2


@pytest.mark.parametrize(("target", "expected"), [(100, 0), (21.1, 7), (3.6, 15), (0.01, None)])
def test_nearest_round(target: float, expected: int | None) -> None:
    assert nearest_round(fc_table(0, 0), target) == expected


@pytest.mark.parametrize(("gain", "verdict"), [(0.01, "**agrees**"), (-0.01, "**does not agree**")])
def test_sobol_page_reports_direction_and_verdict(gain: float, verdict: str) -> None:
    df = fc_table(0.0, 0.0, rounds=6)
    df = df[df["control"] == "ticket"].assign(scheme="xavier_normal", scale=1.0, source="hash")
    other = df.assign(source="sobol", test_acc=df["test_acc"] + gain, run=df["run"] + "-s")
    text = PAPERS["sobol"](pd.concat([df, other]))
    row = next(line for line in text.splitlines() if line.startswith("| QRNG"))
    assert row.endswith(f"{verdict} |")
    assert f"sobol {'above' if gain > 0 else 'below'} hash by 1.00 pp" in text


def generative_table(vae_gain: float, ghn_first: float, seeds: int = 5, rounds: int = 8) -> pd.DataFrame:
    rng = np.random.default_rng(2)
    rows = []
    for source, label in (("hash", "xavier_normal/hash"), ("vae", "vae-0123456789ab"), ("ghn", "ghn-0123456789ab")):
        for seed in range(seeds):
            for r in range(rounds):
                acc = 0.97 + rng.normal(0, 0.0005)
                acc += vae_gain if source == "vae" else ghn_first if source == "ghn" and r == 0 else 0.0
                rows.append({"control": "ticket", "source": source, "start": label, "seed": seed, "round": r,
                             "remaining_pct": 100 * 0.8**r, "test_acc": acc, "run": f"{source}-{seed}"})
    return pd.DataFrame(rows)


def test_generative_verdicts_follow_the_data(tmp_path: Path) -> None:
    def verdicts(text: str) -> dict[str, str]:
        return {line.split(" | ")[0].lstrip("| "): line.rsplit(" | ", 1)[1] for line in text.splitlines()
                if line.startswith("| ") and " | **" in line}

    same = verdicts(PAPERS["generative"](generative_table(vae_gain=0.0, ghn_first=0.01)))
    assert same["local (VAE) starts: no significant difference from pointwise starts"] == "**agrees** |"
    assert same["global (GHN) starts converge faster early on"] == "**agrees** |"
    assert same["global (GHN) starts reach higher accuracy"] == "**agrees** |"
    text = PAPERS["generative"](generative_table(vae_gain=0.01, ghn_first=-0.01))
    other = verdicts(text)
    assert other["local (VAE) starts: no significant difference from pointwise starts"] == "**does not agree** |"
    assert other["global (GHN) starts converge faster early on"] == "**does not agree** |"
    assert "- vae above xavier_normal by 1.00 pp" in text
    path = tmp_path / "results.csv"
    generative_table(0.0, 0.01).to_csv(path, index=False)
    pd.DataFrame([{"start": "ghn-0123456789ab", "seed": s, "test_acc": 0.6, "test_loss": 1.2} for s in (1, 2)]) \
        .to_csv(tmp_path / "at_init.csv", index=False)
    rng = np.random.default_rng(3)
    for lead, expected in ((0.05, "**agrees** |"), (-0.05, "**does not agree** |")):
        pd.DataFrame([{"start": start, "seed": s, "step": step, "test_acc": 0.8 + rng.normal(0, 0.002)
                       + (lead if start.startswith("ghn") and step else 0.0)}
                      for start in ("xavier_normal/hash", "ghn-0123456789ab") for s in range(5)
                      for step in (0, 25, 50)]).to_csv(tmp_path / "early.csv", index=False)
        assert main(["generative", str(path)]) == 0
        text = (tmp_path / "README.md").read_text()
        assert "| ghn-0123456789ab | 2 | 60.00 ± 0.00 | 1.200 ± 0.000 | – |" in text
        assert verdicts(text)["global (GHN) starts lead during the first steps"] == expected
        measured = re.search(r"step 25 ([+-]\d+\.\d) pp", text)
        assert measured and abs(float(measured.group(1)) - 100 * lead) < 0.5

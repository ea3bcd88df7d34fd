"""The page of Frankle et al. (2020): stability verdicts flip with synthetic stability tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lottery.literature import PAPERS, main
from tests.test_literature import verdicts

DENSE = "on MNIST the dense network (LeNet) is stable at initialisation (instability < 2 %)"
TICKETS = "... and so are IMP's matching subnetworks (tickets down to ≈ 3.6 %)"
ONLY_WHEN = "subnetworks reach full accuracy only when stable"


def stability_table(instability: dict[str, float], error: dict[str, float], seeds: int = 5) -> pd.DataFrame:
    """Dense, tickets at 51.3 / 13.5 / 3.6 / 1.9 % and random pruning at 13.5 %, k = 0 and 500; ``instability``
    and ``error`` per network (key ``subnetwork@pct``), noise 0.05 pp."""
    rng = np.random.default_rng(2)
    nets = [("dense", 0, 100.0), ("ticket", 3, 51.3), ("ticket", 9, 13.5), ("ticket", 15, 3.6),
            ("ticket", 18, 1.9), ("random_prune", 9, 13.5)]
    rows = []
    for sub, level, pct in nets:
        key = f"{sub}@{pct:g}"
        for seed in range(seeds):
            for k in (0, 500):
                inst = instability.get(key, 0.002) / (1 + k / 100) + rng.normal(0, 0.0005)
                err = error.get(key, 0.02) + rng.normal(0, 0.0005)
                rows.append({"model": "lenet_300_100", "dataset": "mnist", "seed": seed, "subnetwork": sub,
                             "level": level, "remaining_pct": pct, "k": k,
                             "instability": inst, "error_a": err, "error_b": err + 0.0002, "stable": inst < 0.02,
                             "train_steps": 4585, "environment": "abc"})
    return pd.DataFrame(rows)


def test_stable_networks_agree_and_the_untested_premise_is_not_measured() -> None:
    got = verdicts(PAPERS["frankle2020"](stability_table({}, {})))
    assert got[DENSE] == "agrees" and got[TICKETS] == "agrees"
    assert got[ONLY_WHEN] == "not measured"  # nothing unstable: the claim's premise never arises
    assert PAPERS["frankle2020"](stability_table({}, {})).startswith(
        "# Frankle et al. (2020), stability to SGD noise: LeNet-300-100 on MNIST")


def test_each_verdict_flips_with_its_data() -> None:
    got = verdicts(PAPERS["frankle2020"](stability_table({"dense@100": 0.05, "ticket@3.6": 0.06}, {})))
    assert got[DENSE] == "refuted" and got[TICKETS] == "refuted"
    # unstable random pruning at k = 0 that is worse than dense: the claim holds; as good as dense: refuted
    worse = stability_table({"random_prune@13.5": 0.06}, {"random_prune@13.5": 0.03})
    assert verdicts(PAPERS["frankle2020"](worse))[ONLY_WHEN] == "agrees"
    as_good = stability_table({"random_prune@13.5": 0.06}, {"random_prune@13.5": 0.02})
    assert verdicts(PAPERS["frankle2020"](as_good))[ONLY_WHEN] == "contradicted"
    better = stability_table({"random_prune@13.5": 0.06}, {"random_prune@13.5": 0.015})
    assert verdicts(PAPERS["frankle2020"](better))[ONLY_WHEN] == "refuted"


def test_the_cli_reads_a_stability_table_and_refuses_a_grid_table(tmp_path: Path) -> None:
    path = tmp_path / "stability.csv"
    stability_table({}, {}).to_csv(path, index=False)
    assert main(["frankle2020", str(path)]) == 0
    env = (tmp_path / "README.md").read_text().split("## Environment")[1]  # a study's units: measurements
    assert "`environment` column of `stability.csv`" in env and "| `abc` | 60 |" in env
    assert "| environment | measurements |" in env and "retrain_cell" not in env
    pd.DataFrame({"seed": [0], "round": [0]}).to_csv(tmp_path / "other.csv", index=False)
    assert main(["frankle2020", str(tmp_path / "other.csv")]) == 2


def test_the_page_names_single_unstable_measurements_that_a_mean_hides() -> None:
    df = stability_table({}, {})
    assert "Every one of the 60 measurements is below 2 %." in PAPERS["frankle2020"](df)
    df.loc[(df["subnetwork"] == "random_prune") & (df["seed"] == 3) & (df["k"] == 0), "instability"] = 0.0416
    text = PAPERS["frankle2020"](df)
    assert "Single measurements at or above 2 % (1 of 60): random_prune at 13.5 %, seed 3, k = 0: 4.16 %." in text
    assert verdicts(text)[ONLY_WHEN] == "not measured"  # one seed does not make the mean unstable


def test_a_conv_table_says_the_claims_are_tested_beyond_the_papers_network() -> None:
    mnist = PAPERS["frankle2020"](stability_table({}, {}))
    assert "carries over" not in mnist
    df = stability_table({}, {}).assign(model="lenet5", dataset="fashion_mnist")
    text = PAPERS["frankle2020"](df)
    assert text.startswith("# Frankle et al. (2020), stability to SGD noise: LeNet-5 on Fashion-MNIST")
    assert "tested on LeNet-5 on Fashion-MNIST (claim 2's levels: this grid's tickets with ≥ 3 % of" in text
    assert verdicts(text)[DENSE] == "agrees"


def test_a_partial_study_says_how_many_measurements_remain(tmp_path: Path) -> None:
    path = tmp_path / "stability.csv"
    stability_table({}, {}).to_csv(path, index=False)  # 60 measurements
    study = Path(__file__).resolve().parents[1] / "configs" / "stability_frankle2020.yaml"
    assert main(["frankle2020", str(path), "--grid", str(study)]) == 0
    text = (tmp_path / "README.md").read_text()
    assert "60 of the study's 180 (seed, network, k) measurements. **120 remain.**" in text
    assert f"`python -m lottery.stability_grid {study}`" in text
    assert main(["frankle2020", str(path)]) == 0  # no study known for this folder: no total claimed
    assert "5 seeds, 60 (seed, network, k) measurements.\n" in (tmp_path / "README.md").read_text()


def test_a_compare_grid_given_for_a_stability_table_is_one_line(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "stability.csv"
    stability_table({}, {}).to_csv(path, index=False)
    grid = Path(__file__).resolve().parents[1] / "configs" / "compare_frankle2021.yaml"
    assert main(["frankle2020", str(path), "--grid", str(grid)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: --grid: {grid} is not a stability study (stability.")
    assert not (tmp_path / "README.md").exists()

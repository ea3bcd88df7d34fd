"""The page of Frankle et al. (2021): each claim's verdict flips with synthetic tables, members the table lacks
never count, and the inverted grid's table is read from beside the main one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lottery.literature import PAPERS, main
from tests.test_literature import verdicts

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
ARMS = ("ticket", "random_prune", "reinit", "snip", "grasp", "synflow", "magnitude", "random")
BEAT_RANDOM = "SNIP, GraSP, SynFlow and magnitude at init beat random pruning"
BELOW_IMP = "... but stay below magnitude pruning after training (IMP)"
SHUFFLED = "shuffling the kept weights within each layer keeps or improves their accuracy"
REINIT = "reinitialising the kept weights keeps or improves their accuracy"
UNLIKE_IMP = "... unlike IMP's tickets, which lose accuracy under both"
GRASP_INVERTED = "GraSP does as well or better with its scores inverted"


def pai_table(shift: dict[str, float], seeds: int = 5, rounds: int = 7) -> pd.DataFrame:
    """Every arm at 97 % on the pruned levels plus its ``shift`` (noise 0.02 pp), a collapse at the sparsest
    level for SynFlow inverted only."""
    rng = np.random.default_rng(1)
    arms = [*ARMS, *(f"{m} {c}" for m in ("snip", "grasp", "synflow", "magnitude", "random")
                     for c in ("random_prune", "reinit")), "grasp-inverted", "synflow-inverted"]
    rows = []
    for arm in arms:
        for seed in range(seeds):
            for r in range(rounds):
                acc = 0.98 if r == 0 else 0.97 + shift.get(arm, 0.0) + rng.normal(0, 0.0002)
                rows.append({"model": "lenet_300_100", "dataset": "mnist", "control": arm, "seed": seed, "round": r,
                             "remaining_pct": 100 * 0.512**r, "test_acc_at_best": acc, "test_acc": acc,
                             "epochs_to_best": 3, "start": f"x {arm}", "run": f"{arm}-{seed}",
                             "collapsed_layers": int(arm == "synflow-inverted" and r == rounds - 1)})
    return pd.DataFrame(rows)


PAPER = {"ticket": 0.01, "random_prune": 0.0, "reinit": 0.0, "snip": 0.005, "grasp": 0.005, "synflow": 0.005,
         "magnitude": 0.005, "random": 0.0, "grasp-inverted": 0.006,
         **{f"{m} {c}": 0.005 for m in ("snip", "grasp", "synflow", "magnitude") for c in ("random_prune", "reinit")}}


def test_every_claim_agrees_when_the_data_say_what_the_paper_says() -> None:
    text = PAPERS["frankle2021"](pai_table(PAPER))
    got = verdicts(text)
    assert {got[c] for c in (BEAT_RANDOM, BELOW_IMP, SHUFFLED, REINIT, UNLIKE_IMP, GRASP_INVERTED)} == {"agrees"}
    assert "Holm's correction runs over the page's 6 claims only" in text
    assert text.startswith("# Frankle et al. (2021), pruning at initialisation: LeNet-300-100 on MNIST")
    assert "SynFlow inverted: from 1.8 % (5 of 5 seeds)" in text and "SNIP: none down to 1.8 %" in text


def test_each_claim_flips_with_its_data() -> None:
    got = verdicts(PAPERS["frankle2021"](pai_table({**PAPER, "synflow": -0.005, "snip reinit": 0.0})))
    assert got[BEAT_RANDOM] == "refuted"  # one member significantly the other way refutes the family
    assert got[REINIT] == "refuted"  # SNIP loses 0.5 pp when reinitialised: beyond the 0.25 pp margin
    assert got[SHUFFLED] == "agrees"
    got = verdicts(PAPERS["frankle2021"](pai_table({**PAPER, "random_prune": 0.01, "reinit": 0.01,
                                                   "grasp-inverted": 0.0})))
    assert got[UNLIKE_IMP] == "contradicted"  # IMP = its ablations: the claimed loss is excluded
    assert got[GRASP_INVERTED] == "refuted"
    got = verdicts(PAPERS["frankle2021"](pai_table({**PAPER, "magnitude": 0.012})))
    assert got[BELOW_IMP] == "refuted"


def test_a_method_the_table_lacks_makes_a_family_claim_partly_at_best() -> None:
    df = pai_table(PAPER)
    got = verdicts(PAPERS["frankle2021"](df[~df["control"].str.startswith("magnitude")]))
    assert got[BEAT_RANDOM] == "partly" and got[BELOW_IMP] == "partly"


def test_the_page_reads_the_inverted_grid_beside_the_main_one(tmp_path: Path) -> None:
    df = pai_table(PAPER)
    main_folder, sibling = tmp_path / "frankle2021", tmp_path / "frankle2021_inverted"
    main_folder.mkdir()
    sibling.mkdir()
    inverted = df["control"].str.endswith("-inverted")
    df[~inverted].to_csv(main_folder / "results.csv", index=False)
    assert main(["frankle2021", str(main_folder / "results.csv")]) == 0
    assert verdicts((main_folder / "README.md").read_text())[GRASP_INVERTED] == "not measured"  # listed, untested
    assert "| `unrecorded` | 90 |" in (main_folder / "README.md").read_text()
    df[inverted].to_csv(sibling / "results.csv", index=False)
    assert main(["frankle2021", str(main_folder / "results.csv")]) == 0
    page = (main_folder / "README.md").read_text()
    assert verdicts(page)[GRASP_INVERTED] == "agrees"
    assert "| `unrecorded` | 100 |" in page  # the environment section counts the inverted grid's cells too


def test_the_page_reports_where_each_method_collapses_past_the_trained_levels(tmp_path: Path) -> None:
    df = pai_table(PAPER)
    df.attrs["folder"] = str(tmp_path)
    assert "Past them" not in PAPERS["frankle2021"](df)
    pd.DataFrame({"method": ["snip", "snip", "synflow", "synflow", "grasp"], "seed": [0, 1, 0, 1, 0],
                  "level": [9, 10, None, None, 19], "remaining_pct": [0.5, 0.25, None, None, 0.001],
                  "layers": ["1.weight", "1.weight", None, None, "3.weight"],
                  "forced": [False, False, None, None, True]}).to_csv(tmp_path / "collapse.csv", index=False)
    text = PAPERS["frankle2021"](df)
    assert ("SNIP: 0.375 % (median; 2 of 2 seeds, first 1.weight); SynFlow: none in 2 seeds; GraSP: 0.001 % (median; "
            "1 of 1 seeds, first 3.weight, only when fewer weights were kept than layers share them).") in text


def test_the_page_counts_each_grids_cells_apart(tmp_path: Path) -> None:
    # the inverted grid's cells must not fill the main grid's count: 85 + 10 cells are not "all 90 in"
    df = pai_table(PAPER)
    main_folder, sibling = tmp_path / "frankle2021", tmp_path / "frankle2021_inverted"
    sibling.mkdir()
    inverted = df["control"].str.endswith("-inverted")
    df[inverted].to_csv(sibling / "results.csv", index=False)

    def counts(table: pd.DataFrame) -> str:
        table.attrs.update(folder=str(main_folder), grid_cells=90, config=str(CONFIGS / "compare_frankle2021.yaml"))
        return next(line for line in PAPERS["frankle2021"](table).splitlines() if "finished cells" in line)

    full = counts(df[~inverted].copy())
    assert full.startswith("90 finished cells of the main grid's 90 and 10 of the inverted grid's 20, 700 rows")
    assert full.endswith("**Cells remain: 10 of the inverted grid.**")
    partial = counts(df[~inverted & (df["run"] != "snip-4") & ~df["run"].str.startswith("random_prune")].copy())
    assert partial.startswith("84 finished cells of the main grid's 90 and 10 of the inverted grid's 20")
    assert partial.endswith("**Cells remain: 6 of the main grid and 10 of the inverted grid.**")
    (sibling / "results.csv").unlink()  # the inverted grid not run yet: all 20 of its cells remain
    none = counts(df[~inverted].copy())
    assert none.startswith("90 finished cells of the main grid's 90 and 0 of the inverted grid's 20")
    assert none.endswith("**Cells remain: 20 of the inverted grid.**")


def test_the_page_counts_still_improving_rows_per_method_so_a_leaning_budget_shows() -> None:
    df = pai_table(PAPER)
    df.loc[df["control"] == "snip", "epochs_to_best"] = 8  # SNIP's rows all still improving at the budget's end
    df.attrs["round_length"] = ("epochs", 8)
    text = PAPERS["frankle2021"](df)
    assert "30 of 600 pruned (seed, level) rows had their minimum validation loss in a level's last epoch" in text
    assert ("by method as chosen: IMP 0 of 30, SNIP 30 of 30, GraSP 0 of 30, SynFlow 0 of 30, magnitude at init "
            "0 of 30, random 0 of 30.") in text


def budget_rows(snip_within: list[float], snip_all: list[float]) -> pd.DataFrame:
    """IMP 86/87 % on seeds 0–2 (± 0.1), SNIP as given; a level retrained from 8 epochs to 24."""
    rows = []
    for method, within, full in (("imp", [86.0, 86.1, 85.9], [87.0, 87.2, 86.9]), ("snip", snip_within, snip_all)):
        for seed, (a, b) in enumerate(zip(within, full, strict=True)):
            rows.append({"method": method, "seed": seed, "level": 6, "remaining_pct": 2.13, "grid_acc": a,
                         "epochs_within": 8, "acc_within": a, "best_within": 8, "epochs": 24, "acc_all": b,
                         "best_all": 24 if seed == 0 else 20, "gain_pp": b - a, "environment": "e", "run": "r"})
    return pd.DataFrame(rows)


def test_the_budget_check_beside_the_table_says_whether_a_gap_survives_a_longer_budget(tmp_path: Path) -> None:
    df = pai_table(PAPER)
    df.attrs["folder"] = str(tmp_path)
    assert "Budget check" not in PAPERS["frankle2021"](df)
    budget_rows([80.0, 80.2, 79.8], [81.0, 81.1, 80.9]).to_csv(tmp_path / "budget.csv", index=False)
    text = PAPERS["frankle2021"](df)
    assert "level 6 (2.1 % remaining) of seeds 0, 1, 2 retrained on the same masks and w0 for 24 epochs" in text
    assert "| IMP | 86.00 ± 0.10 | 87.03 ± 0.15 | +1.03 [" in text and "| – | – | 1 of 3 |" in text
    snip = next(line for line in text.splitlines() if line.startswith("| SNIP | 80.00"))
    assert "| +1.00 [+0.75, +1.25] | +6.00 [+5.75, +6.25] | +6.03 [+5.89, +6.18] | 1 of 3 |" in snip  # it survives
    budget_rows([80.0, 80.2, 79.8], [86.9, 87.1, 86.8]).to_csv(tmp_path / "budget.csv", index=False)
    snip = next(line for line in PAPERS["frankle2021"](df).splitlines() if line.startswith("| SNIP | 80.00"))
    assert "| +6.00 [+5.75, +6.25] | +0.10 [+0.10, +0.10] |" in snip  # here it closes: the budget, not the method


@pytest.mark.parametrize(("change", "message"), [
    ({"acc_all": "eighty"}, "column 'acc_all' holds 'eighty'"),
    ({"seed": -1}, "column 'seed' holds -1"),
    ({"run": None, "level": None}, "column 'level' holds nan"),
])
def test_a_damaged_budget_file_is_named_with_its_column(change: dict, message: str, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "g"
    folder.mkdir()
    pai_table(PAPER).to_csv(folder / "results.csv", index=False)
    rows = budget_rows([80.0, 80.2, 79.8], [81.0, 81.1, 80.9]).astype(object)
    for column, value in change.items():
        rows.loc[1, column] = value
    rows.to_csv(folder / "budget.csv", index=False)
    assert main(["frankle2021", str(folder / "results.csv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"budget.csv: {message}" in err[0] and not (folder / "README.md").exists()


def test_a_budget_file_of_several_starts_is_refused_by_a_page_of_one(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "g"
    folder.mkdir()
    pai_table(PAPER).to_csv(folder / "results.csv", index=False)
    rows = budget_rows([80.0, 80.2, 79.8], [81.0, 81.1, 80.9])
    rows["start"] = ["xavier_normal/hash"] * 5 + ["kaiming_normal/hash"]
    rows.to_csv(folder / "budget.csv", index=False)
    assert main(["frankle2021", str(folder / "results.csv")]) == 2
    assert "holds several starts (xavier_normal/hash, kaiming_normal/hash)" in capsys.readouterr().err
    rows["start"] = "kaiming_normal/hash"
    rows.to_csv(folder / "budget.csv", index=False)
    assert main(["frankle2021", str(folder / "results.csv")]) == 0


def test_a_budget_row_given_twice_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "g"
    folder.mkdir()
    pai_table(PAPER).to_csv(folder / "results.csv", index=False)
    rows = budget_rows([80.0, 80.2, 79.8], [81.0, 81.1, 80.9])
    pd.concat([rows, rows.iloc[[4]]]).to_csv(folder / "budget.csv", index=False)
    assert main(["frankle2021", str(folder / "results.csv")]) == 2
    assert "'snip' seed 1 level 6 (24 epochs) appears twice" in capsys.readouterr().err


def write_record(cells: Path, run: str, control: str, shares: list[dict[str, object]]) -> None:
    rounds = [{"round": r, "control": control, "remaining_pct": 50.0,
               **{f"remaining_pct/{k}": v for k, v in s.items()}} for r, s in enumerate(shares)]
    (cells / run).mkdir(parents=True)
    (cells / run / "results.json").write_text(json.dumps({"finished": True, "run": run, "rounds": rounds}))


def test_the_page_shows_where_each_method_keeps_its_weights_from_the_cell_records(tmp_path: Path,
                                                                                  capsys: pytest.CaptureFixture[str]
                                                                                  ) -> None:
    df = pai_table(PAPER)
    df.attrs["folder"] = str(tmp_path)
    assert "Where each method keeps its weights" not in PAPERS["frankle2021"](df)
    cells = tmp_path / "cells"
    dense = {"fc1": 100.0, "fc2": 100.0}
    for seed, (fc1, fc2) in enumerate([(2.0, 6.0), (4.0, 6.0)]):
        write_record(cells, f"snip-s{seed}", "snip", [dense, {"fc1": fc1, "fc2": fc2}])
        write_record(cells, f"imp-s{seed}", "ticket", [dense, {"fc1": 5.0, "fc2": 5.0}])
        write_record(cells, f"imp-s{seed}-reinit", "reinit",
                     [dense, {"fc1": 99.0, "fc2": 99.0}])  # a control keeps its source's shares: not shown
    df = pd.concat([df, pd.DataFrame([{**df.iloc[0].to_dict(), "run": r} for r in ("snip-s0", "snip-s1",
                                                                                 "imp-s0", "imp-s1")])])
    df.attrs["folder"] = str(tmp_path)
    write_record(cells, "snip-s9", "snip", [dense, {"fc1": 90.0, "fc2": 90.0}])  # not gathered yet
    text = PAPERS["frankle2021"](df)
    assert "keeps its weights at level 1 " in text
    assert "| method | `fc1` | `fc2` |\n|---|---|---|\n| IMP | 5.00 | 5.00 |\n| SNIP | 3.00 ± 1.41 | 6.00 |\n" in text
    write_record(cells, "grasp-s0", "grasp", [dense, {"fc1": "7", "fc2": 1.0}])
    (tmp_path / "g").mkdir()
    pd.concat([df, pd.DataFrame([{**df.iloc[0].to_dict(), "run": "grasp-s0"}])]).to_csv(tmp_path / "results.csv",
                                                                                       index=False)
    assert main(["frankle2021", str(tmp_path / "results.csv"), "--out", str(tmp_path / "g" / "README.md")]) == 2
    err = capsys.readouterr().err
    assert "grasp-s0/results.json: remaining_pct/fc1 is '7', not a share in 0–100 %" in err
    assert not (tmp_path / "g" / "README.md").exists()


def test_the_ablation_table_sets_each_method_against_imps_masks_shuffled(tmp_path: Path) -> None:
    df = pai_table({**PAPER, "random_prune": -0.003})
    df.attrs["folder"] = str(tmp_path)
    lines = PAPERS["frankle2021"](df).splitlines()
    head = lines.index("| method | as chosen | shuffled − it (pp) | reinit − it (pp) | inverted − it (pp) | it − IMP "
                       "shuffled (pp) |")
    last = {line.split(" | ")[0][2:]: line.split(" | ")[-1] for line in lines[head + 2:head + 8]}
    assert last["IMP"] == "– |"
    mean = {k: float(v.split(" [")[0]) for k, v in last.items() if k != "IMP"}
    assert mean["SNIP"] == pytest.approx(0.80, abs=0.03) and mean["random"] == pytest.approx(0.30, abs=0.03)
    df = pai_table({**PAPER, "random_prune": 0.008})  # IMP's shares, shuffled, above every method
    df.attrs["folder"] = str(tmp_path)
    lines = PAPERS["frankle2021"](df).splitlines()
    assert lines[head + 3].startswith("| SNIP |")
    assert float(lines[head + 3].split(" | ")[-1].split(" [")[0]) == pytest.approx(-0.30, abs=0.03)  # 0.5 − 0.8

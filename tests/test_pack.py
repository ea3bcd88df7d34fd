"""Stacked members end to end: a pack of cells trains each member exactly as its cell trains alone, resumes
from its checkpoint to the same end, and a grid packed K to a process gives the one-by-one table."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from lottery.classifier import Classifier
from lottery.compare import main as compare
from lottery.config import Config, load, resolve
from lottery.pack import member_epochs, pack_dir, packs
from lottery.runner import run, run_dir, run_pack
from tests.data_fixtures import REAL_ROOT, fake_cifar10, needs_mnist
from tests.test_compare import CONFIGS, grid_file

STARTS = [{"scheme": "xavier_normal"}, {"scheme": "kaiming_uniform", "scale": 0.5},
          {"scheme": "xavier_normal", "source": "sobol"}]


def cells(out: Path, seeds: list[int], model: str = "lenet_300_100", **prune: object) -> list[Config]:
    base = {"data": {"root": str(REAL_ROOT), "train_subset": 1200, "val_size": 300, "test_subset": 600,
                     "download": False},
            "prune": {"rounds": 3, "epochs_per_round": 2, **prune}, "optim": {"milestones": [1], "gamma": 0.5},
            "train": {"progress_bar": False, "threads": 1}, "output_dir": str(out), "model": {"name": model}}
    return [resolve({**base, "name": f"cell{i}", "seed": seed, "init": start})
            for i, (start, seed) in enumerate(zip(STARTS, seeds, strict=False))]


@needs_mnist
@pytest.mark.parametrize(("seeds", "prune"), [([1, 2, 1], {}), ([3, 3], {"scope": "global", "criterion": "random"}),
                                              ([1, 2], {"model": "lenet5", "conv_rate": 0.1})],
                         ids=["own batch orders", "one shared batch order, global random pruning", "LeNet-5"])
def test_each_member_is_its_cell_trained_alone(tmp_path: Path, seeds: list[int], prune: dict) -> None:
    packed = run_pack(cells(tmp_path / "packed", seeds, **prune))
    alone = [run(c) for c in cells(tmp_path / "alone", seeds, **prune)]
    for p, a in zip(packed, alone, strict=True):
        assert p["rounds"] == a["rounds"]  # masks, accuracies, best epochs, sleeping fractions: bit for bit
        assert len(p["pack"]["members"]) == len(seeds) and "pack" not in a
    for c in cells(tmp_path / "packed", seeds, **prune):  # each cell's own files, as if it had run alone
        files = {f.name for f in run_dir(c).iterdir()}
        assert {"config.yaml", "rounds.csv", "rounds.json", "results.json"} <= files
    assert packed[0]["rounds"][-1]["remaining_pct"] < 65 + 15 * ("conv_rate" in prune)
    assert packed[0]["rounds"] != packed[1]["rounds"]  # the members really are different networks
    # each member's per-epoch curves (what its W&B run gets) are its cell's alone
    logs = pack_dir(cells(tmp_path / "packed", seeds, **prune)) / "logs"
    for m, c in enumerate(cells(tmp_path / "alone", seeds, **prune)):
        with (run_dir(c) / "logs" / "version_0" / "metrics.csv").open() as f:
            alone_curve = [(int(r["step"]), float(r["val_loss"])) for r in csv.DictReader(f) if r["val_loss"]]
        packed_curve = [(e["step"], e["val_loss"]) for e in member_epochs(logs, m) if "val_loss" in e]
        assert packed_curve == alone_curve and len(alone_curve) == 3 * 2


def test_augmented_convolutional_cells_pack_bit_for_bit(tmp_path: Path) -> None:
    root = fake_cifar10(tmp_path / "data", per_batch=24)  # CIFAR-shaped, crop-and-flip augmentation per member
    configs = CONFIGS / "conv2_cifar10.yaml"
    args = [f"data.root={root}", "data.val_size=20", "data.batch_size=25", "data.download=false", "prune.rounds=2",
            "prune.epochs_per_round=1", "train.progress_bar=false", "data.augment=true", "train.threads=1"]

    def cfgs(out: str) -> list[Config]:
        return [load(configs, [*args, f"output_dir={tmp_path / out}", f"seed={s}", f"init.scheme={scheme}"])
                for s, scheme in [(1, "kaiming_normal"), (2, "xavier_uniform")]]

    packed, alone = run_pack(cfgs("packed")), [run(c) for c in cfgs("alone")]
    assert [p["rounds"] for p in packed] == [a["rounds"] for a in alone]
    assert packed[0]["rounds"][1]["remaining_pct/model.0.weight"] == pytest.approx(90.0, abs=0.1)  # conv_rate 0.1


@needs_mnist
def test_batched_members_match_their_cells_within_float_tolerance(tmp_path: Path) -> None:
    packed = run_pack(cells(tmp_path / "packed", [1, 2]), exact=False)
    alone = [run(c) for c in cells(tmp_path / "alone", [1, 2])]
    assert pack_dir(cells(tmp_path / "packed", [1, 2]), exact=False) != pack_dir(cells(tmp_path / "packed", [1, 2]))
    for p, a in zip(packed, alone, strict=True):
        assert p["pack"]["exact"] is False
        for rp, ra in zip(p["rounds"], a["rounds"], strict=True):
            assert rp["remaining_pct"] == ra["remaining_pct"] and rp["epochs_to_best"] == ra["epochs_to_best"]
            assert rp["val_loss"] == pytest.approx(ra["val_loss"], rel=1e-3)
            assert rp["test_acc"] == pytest.approx(ra["test_acc"], abs=2 / 600)  # 600 test images


@needs_mnist
def test_interrupted_pack_resumes_to_the_same_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = run_pack(cells(tmp_path / "a", [1, 2]))
    original = Classifier.on_train_epoch_start

    def crash(self: Classifier) -> None:
        if self.current_epoch == 3:  # round 2's second epoch, after round 1 and its checkpoint
            raise RuntimeError("simulated crash")

    monkeypatch.setattr(Classifier, "on_train_epoch_start", crash, raising=False)
    cut = cells(tmp_path / "b", [1, 2])
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_pack(cut)
    assert (pack_dir(cut) / "checkpoints" / "last.ckpt").is_file()
    assert len(json.loads((run_dir(cut[1]) / "rounds.json").read_text())) == 1
    monkeypatch.setattr(Classifier, "on_train_epoch_start", original, raising=False)
    resumed = run_pack(cut)
    assert [r["rounds"] for r in resumed] == [r["rounds"] for r in expected]
    assert not (pack_dir(cut) / "checkpoints").exists()  # removed once every cell's results are written


@needs_mnist
def test_a_packed_grid_gives_the_one_by_one_table(tmp_path: Path) -> None:
    alone = grid_file(tmp_path, "alone")
    packed = grid_file(tmp_path, "packed", members_per_process=3)  # 4 cells: a pack of 3, a pack of 1
    assert compare([str(alone), "--no-plots"]) == 0
    assert compare([str(packed), "--no-plots"]) == 0
    assert (tmp_path / "packed" / "results.csv").read_text() == (tmp_path / "alone" / "results.csv").read_text()
    assert len([p for p in (tmp_path / "packed" / "cells" / "packs").iterdir() if p.is_dir()]) == 1


def test_packs_group_compatible_cells_and_leave_the_rest_alone(tmp_path: Path) -> None:
    def cfg(seed: int, **changes: object) -> Config:
        return resolve({"seed": seed, "output_dir": str(tmp_path), **changes})

    cfgs = [cfg(0), cfg(1, init={"scheme": "kaiming_normal"}), cfg(2, model={"name": "lenet5"}), cfg(3),
            cfg(4, optim={"lr": 0.1}), cfg(5), cfg(6, prune={"sleeping_check": 0.01})]
    assert packs(cfgs, 3) == [[0, 1, 3], [2], [4], [5], [6]]  # conv nets and sleeping checks run alone
    assert packs(cfgs, 2) == [[0, 1], [2], [3, 5], [4], [6]]
    assert packs(cfgs, 1) == [[i] for i in range(7)]
    with pytest.raises(ValueError, match="a pack's cells must differ only in seed and init"):
        run_pack([cfgs[0], cfgs[4]])

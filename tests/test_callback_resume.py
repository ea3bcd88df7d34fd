"""The callback across a kill: resumed runs end bit-identical, and a checkpoint for another network is refused."""

import json
import os
import subprocess
import sys

import pytest
import torch

from lottery.callbacks import LotteryTicket
from lottery.config import PruneConfig
from lottery.data import EpochSampler
from tests.lightning_helpers import PlainClassifier, quick_prune, trainer
from tests.test_lottery_callback import ROOT, fit


def run_script(tmp_path, mode, order="plain"):
    env = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "tests.resume_script", str(tmp_path), mode, order],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )


def test_kill_and_resume_matches_uninterrupted(tmp_path):
    full = run_script(tmp_path, "full")
    assert full.returncode == 0, full.stderr[-2000:]
    killed = run_script(tmp_path, "kill")
    assert killed.returncode == 17, killed.stderr[-2000:]
    assert not (tmp_path / "kill.pt").exists()
    resumed = run_script(tmp_path, "resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a, b = torch.load(tmp_path / "full.pt"), torch.load(tmp_path / "resume.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ha, hb = json.loads((tmp_path / "full.json").read_text()), json.loads((tmp_path / "resume.json").read_text())
    assert len(ha) == 3 and ha == hb


def kill_and_resume(tmp_path, order):
    """(uninterrupted, resumed after a kill): final weights and round records."""
    for mode, code in (("full", 0), ("kill", 17), ("resume", 0)):
        out = run_script(tmp_path, mode, order)
        assert out.returncode == code, out.stderr[-2000:]
    return [(torch.load(tmp_path / f"{m}.pt"), json.loads((tmp_path / f"{m}.json").read_text()))
            for m in ("full", "resume")]


def test_kill_and_resume_with_shuffling_ends_identical_with_the_epoch_sampler(tmp_path):
    (a, ha), (b, hb) = kill_and_resume(tmp_path / "epoch", "epoch")
    assert len(ha) == 3 and all(torch.equal(a[k], b[k]) for k in a) and ha == hb


def test_the_epoch_samplers_order_is_a_function_of_seed_and_epoch():
    first, again, other = EpochSampler(100, seed=5), EpochSampler(range(100), seed=5), EpochSampler(100, seed=6)
    assert list(first) == list(again) != list(other) and sorted(first) == list(range(100))
    epoch0 = list(first)
    first.set_epoch(3)
    assert list(first) != epoch0  # a new order every epoch, as shuffle=True gives
    again.set_epoch(3)
    assert list(first) == list(again)  # and the same one in a resumed process, told the epoch by Lightning
    with pytest.raises(ValueError, match="holds 0 items"):
        EpochSampler([])


def test_mask_shape_mismatch_on_resume(tmp_path):
    cb = LotteryTicket(
        quick_prune(rounds=2)
    )
    fit(cb)
    state = cb.state_dict()
    state["masks"]["net.0.weight"]["shape"] = [16, 20]
    other = LotteryTicket(PruneConfig(rounds=2, epochs_per_round=1, output_rate=None))
    other.load_state_dict(state)
    with pytest.raises(ValueError, match=r"checkpoint mask for 'net.0.weight' has shape \(16, 20\)"):
        other.on_fit_start(trainer(), PlainClassifier())

"""Tickets as artifacts (issue 22): export a finished run's ticket (masks + start) and its trained pruned
network; the ticket loads at w0, retrains to the original rounds bit for bit, and the sparse network computes
what the dense one does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lottery.config import load
from lottery.export import load_sparse, load_ticket, ticket_network
from lottery.export import main as export
from lottery.init import initialize
from lottery.pruning.levels import load_levels
from lottery.runner import run_dir
from lottery.train import main as train
from tests.test_bad_inputs import error_line
from tests.test_train_cli import CONFIGS, QUICK, needs_mnist


@needs_mnist
def test_export_load_and_retrain_reproduce_the_run(tmp_path: Path, mnist_root: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    args = [str(CONFIGS / "lenet300_mnist.yaml"), "prune.rounds=3", "prune.epochs_per_round=1",
            f"output_dir={tmp_path / 'runs'}", *QUICK]
    assert train(args) == 0
    run = run_dir(load(args[0], args[1:]))
    original = json.loads((run / "results.json").read_text())["rounds"]
    assert export([str(run), "--out", str(tmp_path / "out")]) == 0
    ticket = load_ticket(tmp_path / "out" / "ticket")
    assert ticket.meta["round"] == 2 and ticket.meta["remaining_pct"] == pytest.approx(original[2]["remaining_pct"])
    assert sum(p.stat().st_size for p in (tmp_path / "out" / "ticket").rglob("*.npz")) < 150_000  # tens of KB

    # the network is w0 (regenerated, nothing stored) times the run's level-2 masks
    w0 = initialize(ticket_network(ticket.meta), ticket.spec)
    level = {k.removeprefix("model."): v for k, v in load_levels(run / "masks", 3)[2].items()}
    for name, p in ticket.network.named_parameters():
        expected = w0.get_parameter(name) * level[name] if name in level else w0.get_parameter(name)
        assert torch.equal(p, expected), name

    # retraining the ticket's levels reproduces the original rounds bit for bit
    retrain = [str(tmp_path / "out" / "ticket" / "config.yaml"), f"prune.masks_from={tmp_path / 'out' / 'ticket'}",
               f"output_dir={tmp_path / 'again'}", "data.root=null"]
    assert train(retrain) == 0
    again = json.loads((run_dir(load(retrain[0], retrain[1:])) / "results.json").read_text())["rounds"]
    for a, b in zip(original, again, strict=True):
        assert a["test_acc"] == b["test_acc"] and a["val_loss"] == b["val_loss"] and a["remaining_pct"] == \
            b["remaining_pct"]

    # the trained network: dense with zeros, and sparse (CSR) giving the same outputs
    dense_state = torch.load(tmp_path / "out" / "trained-dense.pt", weights_only=True)
    dense = ticket.network
    dense.load_state_dict(dense_state)
    sparse = load_sparse(tmp_path / "out" / "trained-sparse.pt", ticket.meta)
    x = torch.randn(256, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(sparse(x), dense.eval()(x), atol=1e-5)
    state = torch.load(tmp_path / "out" / "trained-sparse.pt", weights_only=True)
    nonzero = sum(int((t != 0).sum()) for n, t in dense_state.items() if t.dim() > 1)
    assert sum(v.numel() for n, v in state.items() if n.endswith("::values")) == nonzero  # only the survivors


@needs_mnist
def test_export_refuses_unfinished_runs_and_missing_rounds(tmp_path: Path, mnist_root: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert export([str(tmp_path / "nowhere")]) == 2
    assert "is not a run directory" in error_line(capsys)
    (tmp_path / "half").mkdir()
    assert export([str(tmp_path / "half")]) == 2
    assert "is not a finished run" in error_line(capsys)
    args = [str(CONFIGS / "lenet300_mnist.yaml"), "prune.rounds=3", "prune.epochs_per_round=1",
            f"output_dir={tmp_path / 'runs'}", *QUICK]
    assert train(args) == 0
    capsys.readouterr()
    run = run_dir(load(args[0], args[1:]))
    assert export([str(run), "--round", "5"]) == 2
    assert "--round: 5 is not valid; " in error_line(capsys) and not (run / "export").exists()
    assert export([str(run), "--round", "1"]) == 0  # an earlier level: the ticket only (its weights were not kept)
    out = run / "export" / "round-01"
    assert (out / "ticket" / "ticket.json").is_file() and not (out / "trained-dense.pt").exists()
    assert "pass --train to retrain rounds 0..1" in capsys.readouterr().err

    # --train: round 1's trained network, retrained from the ticket, is the run's own round 1
    assert export([str(run), "--round", "1", "--train"]) == 0
    dense = torch.load(out / "trained-dense.pt", weights_only=True)
    retrained = out / "retrained"
    again = json.loads(next(retrained.glob("*/results.json")).read_text())["rounds"]
    original = json.loads((run / "results.json").read_text())["rounds"]
    assert len(again) == 2 and [r["test_acc"] for r in again] == [r["test_acc"] for r in original[:2]]
    assert [r["val_loss"] for r in again] == [r["val_loss"] for r in original[:2]]
    level1 = {k.removeprefix("model."): v for k, v in load_levels(run / "masks", 2)[1].items()}
    assert all(not bool(m.all()) for m in level1.values())  # a pruned level: the zeros below say something
    assert all(bool((dense[name][~mask] == 0).all()) and bool((dense[name][mask] != 0).all())
               for name, mask in level1.items())
    assert set(dense) == {n for n, _ in ticket_network(load_ticket(out / "ticket").meta).named_parameters()}

"""Regression tests for defects found by trying the tools as a new user would (issue 13)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lottery.config import load
from lottery.train import main
from tests.test_train_cli import CONFIGS, QUICK, needs_mnist


@pytest.mark.parametrize("name", ["../../x", "a/b", "..", "a\\b", "", "x y"])
def test_names_cannot_leave_the_output_dir(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [str(CONFIGS / "lenet300_mnist.yaml"), f"name={name!r}", f"output_dir={tmp_path / 'o'}"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: name: ") and "no path separators" in err and "\n" not in err
    assert not (tmp_path / "o").exists() and not (tmp_path.parent / "x").exists()


@needs_mnist
def test_rewind_step_beyond_the_first_round_is_refused_before_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.data_fixtures import REAL_ROOT

    monkeypatch.setenv("LOTTERY_DATA", str(REAL_ROOT))
    args = [str(CONFIGS / "lenet300_mnist.yaml"), "prune.rounds=3", "prune.epochs_per_round=1", "prune.rewind=step",
            f"output_dir={tmp_path}", *QUICK]  # 1,200 images / 60 = 20 steps a round
    assert main([*args, "prune.rewind_step=21"]) == 2
    err = capsys.readouterr().err
    assert "prune.rewind_step: 21 is not valid; the snapshot must be taken within the first round (steps 0..20)" in err
    assert not any(tmp_path.iterdir())
    assert main([*args, "prune.rewind_step=20"]) == 0  # the weights after round 1's last step


def test_the_callback_names_an_unreached_rewind_step() -> None:
    from lottery.callbacks import LotteryTicket
    from tests.lightning_helpers import PlainClassifier, synthetic, trainer

    imp = LotteryTicket(rounds=2, epochs_per_round=1, rewind="step", rewind_step=10_000, verbose=False)
    with pytest.raises(ValueError, match="rewind_step: 10000 is not valid; round 1 ended before that step"):
        trainer(callbacks=[imp]).fit(PlainClassifier(), *synthetic())


@needs_mnist
def test_resuming_with_another_thread_count_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from lottery.classifier import Classifier
    from lottery.runner import run_dir
    from tests.data_fixtures import REAL_ROOT

    monkeypatch.setenv("LOTTERY_DATA", str(REAL_ROOT))
    args = [str(CONFIGS / "lenet300_mnist.yaml"), "prune.rounds=3", "prune.epochs_per_round=1",
            f"output_dir={tmp_path}", *QUICK]  # QUICK ends with train.threads=1
    calls = {"n": 0}

    def crash(self: Classifier) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("simulated crash")

    monkeypatch.setattr(Classifier, "on_train_epoch_start", crash, raising=False)
    with pytest.raises(RuntimeError, match="simulated crash"):
        main(args)
    monkeypatch.undo()
    monkeypatch.setenv("LOTTERY_DATA", str(REAL_ROOT))
    assert main([*args, "train.threads=2"]) == 2
    err = capsys.readouterr().err
    assert "train.threads: " in err and "was written with 1 threads; resuming with 2" in err
    assert (run_dir(load(args[0], args[1:])) / "checkpoints" / "last.ckpt").is_file()  # nothing lost
    assert main(args) == 0  # the same thread count resumes

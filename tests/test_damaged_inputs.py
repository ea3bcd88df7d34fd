"""Damaged inputs to the reading tools and the training path (issue 20): each gets one line naming the file
or field and what to do, exit 2, and leaves nothing behind."""

from __future__ import annotations

import gzip
import importlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lottery.checkpoints import sidecar
from lottery.config import load
from lottery.data import sources
from lottery.generative.__main__ import main as generative
from lottery.init.learned import FORMAT, GeneratorError, file_name
from lottery.init.learned import load as load_generator
from lottery.literature import main as literature
from lottery.pruning.levels import MaskSourceError, load_levels, save_level
from lottery.runner import run_dir
from lottery.stats import main as stats
from lottery.train import main as train
from tests.data_fixtures import fake_mnist
from tests.lightning_helpers import crash_at_epoch
from tests.test_bad_inputs import LENET, error_line

BAD_TABLES = [
    ("empty", b"", "is not a readable CSV table (EmptyDataError"),
    ("binary", bytes(range(256)) * 4, "is not a readable CSV table"),
    ("wrong columns", b"a,b\n1,2\n", "lacks the columns ['start', 'seed', 'round'"),
    ("header only", b"start,seed,round,remaining_pct,test_acc,run\n", "has no rows"),
]


@pytest.mark.parametrize("tool", ["lottery.stats", "lottery.plot", "lottery.literature"])
@pytest.mark.parametrize(("content", "must"), [t[1:] for t in BAD_TABLES], ids=[t[0] for t in BAD_TABLES])
def test_reading_tools_refuse_a_bad_table(tool: str, content: bytes, must: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    table = tmp_path / "results.csv"
    table.write_bytes(content)
    main = importlib.import_module(tool).main
    args = ["sobol", str(table)] if tool == "lottery.literature" else [str(table)]
    assert main(args) == 2
    err = error_line(capsys)
    assert str(table) in err and must in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv"]


def test_reading_tools_refuse_an_out_of_the_wrong_kind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table = Path(__file__).resolve().parents[1] / "results" / "sobol_quick" / "results.csv"
    (tmp_path / "afile").write_text("x\n")
    with pytest.raises(SystemExit) as stop:
        stats([str(table), "--out", str(tmp_path / "afile")])
    assert stop.value.code == 2 and "--out: " in capsys.readouterr().err
    assert literature(["sobol", str(table), "--out", str(tmp_path)]) == 2
    assert "is a folder; give the README file" in error_line(capsys)


def test_fit_vae_refuses_an_out_that_is_a_file_and_an_empty_run_config(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("")
    (run / "results.json").write_text('{"finished": true, "rounds": []}\n')
    torch.save({"state_dict": {"model.0.weight": torch.ones(3, 3)}}, run / "checkpoints" / "last.ckpt")
    (tmp_path / "afile").write_text("x\n")
    assert generative(["fit", "vae", str(run), "--out", str(tmp_path / "afile")]) == 2
    assert "--out: " in error_line(capsys)
    assert generative(["fit", "vae", str(run), "--out", str(tmp_path / "gens")]) == 2
    assert "config.yaml is not a run config (no model.name)" in error_line(capsys)
    assert not (tmp_path / "gens").exists()


def test_a_generator_with_the_right_name_but_missing_parts_is_refused(tmp_path: Path) -> None:
    buf = io.BytesIO()
    torch.save({"format": FORMAT, "kind": "vae", "meta": {"latent": 2, "hidden": 8}, "state": {}}, buf)
    path = tmp_path / file_name("vae", buf.getvalue())
    path.write_bytes(buf.getvalue())
    with pytest.raises(GeneratorError, match=f"{path} is incomplete or damaged \\(KeyError"):
        load_generator(path)


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = fake_mnist(tmp_path / "data")
    monkeypatch.setenv("LOTTERY_DATA", str(root))
    return root


def run_args(tmp_path: Path, *more: str) -> list[str]:
    return [LENET, "data.download=false", "data.val_size=50", "prune.rounds=2", "prune.epochs_per_round=1",
            "train.progress_bar=false", "train.threads=1", f"output_dir={tmp_path / 'out'}", *more]


@pytest.mark.parametrize(("override", "must"), [
    ("model.kwargs={in_features: 28, out_features: 10}", "outputs (2, 1, 28, 10) for a batch of 2 mnist images"),
    ("model.kwargs={in_features: 7, out_features: 10}", "does not fit mnist images of shape (1, 28, 28)"),
])
def test_a_model_that_does_not_fit_the_data_is_named_before_training(override: str, must: str, data: Path,
                                                                     tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert train(run_args(tmp_path, "model.name=torch.nn:Linear", override)) == 2
    assert must in error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_float_idx_images_and_an_empty_test_split_are_refused(data: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    raw = data / "MNIST" / "raw"
    images = raw / "t10k-images-idx3-ubyte.gz"
    pixels = np.frombuffer(gzip.decompress(images.read_bytes())[16:], np.uint8).astype(">f4")
    header = bytes([0, 0, 0x0D, 3]) + b"".join(int(d).to_bytes(4, "big") for d in (100, 28, 28))
    images.write_bytes(gzip.compress(header + pixels.tobytes()))
    assert train(run_args(tmp_path)) == 2
    assert "t10k-images-idx3-ubyte.gz stores torch.float32 values" in error_line(capsys)
    fake_mnist(data, n_test=0)  # well-formed files holding no test images
    assert train(run_args(tmp_path)) == 2
    assert "the test split of mnist holds 0 images" in error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_online_wandb_without_a_key_is_refused_before_training(data: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    assert train(run_args(tmp_path, "wandb.enabled=true", "wandb.mode=online")) == 2
    assert "wandb.mode: online needs a W&B API key" in error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_dangling_and_looping_output_links_are_refused(data: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    for link in ("dangling", "loop", "dangling/sub"):
        assert train([*run_args(tmp_path), f"output_dir={tmp_path / link}"]) == 2
        assert "does not resolve (missing target or a loop)" in error_line(capsys)
    assert not (tmp_path / "nowhere").exists()


def test_a_failed_download_leaves_no_empty_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(target: Path) -> None:
        (target / "MNIST" / "raw").mkdir(parents=True)  # what torchvision creates before it fails
        raise OSError("no network")

    root = tmp_path / "root"
    root.mkdir()
    (root / "keep.txt").write_text("mine\n")
    where, error = sources._download(root, offline)
    assert where is None and "no network" in error
    assert sorted(p.name for p in root.iterdir()) == ["keep.txt"]


def test_a_checkpoint_from_another_schedule_or_with_empty_masks_is_refused(data: Path, tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    args = run_args(tmp_path, "prune.rounds=3")
    crash_at_epoch(3, lambda: train(args))
    capsys.readouterr()  # the crashed run's round lines
    ckpt = run_dir(load(args[0], args[1:])) / "checkpoints" / "last.ckpt"
    pristine = ckpt.read_bytes()

    def edit(change) -> None:
        state = torch.load(io.BytesIO(pristine), weights_only=True)
        key = next(k for k in state["callbacks"] if k.startswith("LotteryTicket"))
        change(state["callbacks"][key])
        buf = io.BytesIO()
        torch.save(state, buf)
        ckpt.write_bytes(buf.getvalue())
        sidecar(ckpt).unlink(missing_ok=True)

    edit(lambda s: s.update(round=7))
    assert train(args) == 2
    assert "its round 7 is outside this schedule of 3 rounds" in error_line(capsys)
    edit(lambda s: s["masks"][next(iter(s["masks"]))].update(bits=torch.zeros_like(
        s["masks"][next(iter(s["masks"]))]["bits"])))
    assert train(args) == 2
    assert "keep no weight at all" in error_line(capsys)
    ckpt.write_bytes(pristine)
    assert train(args) == 0
    assert json.loads((ckpt.parent.parent / "results.json").read_text())["finished"]


def test_mask_levels_that_keep_no_weight_are_refused(tmp_path: Path) -> None:
    save_level(tmp_path / "masks", 0, {"0.weight": torch.ones(4, 3, dtype=torch.bool)})
    save_level(tmp_path / "masks", 1, {"0.weight": torch.zeros(4, 3, dtype=torch.bool)})
    assert len(load_levels(tmp_path, 1)) == 1  # the whole level 0 reads
    with pytest.raises(MaskSourceError, match="round-01.npz: the mask of '0.weight' keeps no weight at all"):
        load_levels(tmp_path, 2)

"""Files a user hands over never run code (issue 20): each crafted file below carries a pickle payload that
would create a marker file when unpickled. Every reader must refuse it with one line naming the file, and
the marker must not exist afterwards — the proof that nothing ran."""

from __future__ import annotations

import hashlib
import io
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lottery.checkpoints import AtomicCheckpointIO, sidecar
from lottery.data.sources import read_cifar10
from lottery.init.learned import GeneratorError, file_name
from lottery.init.learned import load as load_generator
from lottery.train import main
from tests.data_fixtures import fake_cifar10
from tests.test_train_cli import CONFIGS, needs_mnist, quick_run

REPO = Path(__file__).resolve().parents[1]


class Payload:
    """Unpickling this calls ``open(marker, "w")``: a file appears if the reader runs code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (open, (str(self.marker), "w"))


def crafted_checkpoint(marker: Path, state: dict | None = None) -> bytes:
    buf = io.BytesIO()
    torch.save({"state_dict": state or {}, "epoch": 1, "global_step": 1, "x": Payload(marker)}, buf)
    return buf.getvalue()


def test_the_payload_runs_under_a_plain_unpickler(tmp_path: Path) -> None:
    """The control: the same bytes do create the marker when loaded the unsafe way, so the tests below
    would fail if a reader went back to ``weights_only=False``."""
    marker = tmp_path / "ran"
    torch.load(io.BytesIO(crafted_checkpoint(marker)), weights_only=False)
    assert marker.exists()


@needs_mnist
def test_a_crafted_checkpoint_with_a_matching_hash_is_refused_unread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    args, path = quick_run(tmp_path, monkeypatch)
    ckpt = path / "checkpoints" / "last.ckpt"
    ckpt.parent.mkdir(parents=True)
    marker = tmp_path / "ran"
    data = crafted_checkpoint(marker)
    ckpt.write_bytes(data)
    sidecar(ckpt).write_text(hashlib.sha256(data).hexdigest() + "\n")  # the attacker updated the hash too
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: checkpoint {ckpt} holds code, not only weights") and "\n" not in err, err
    assert "builtins.open" in err or "io.open" in err, err
    assert not marker.exists()


def test_lightning_resumes_through_the_weights_only_reader(tmp_path: Path) -> None:
    """``trainer.fit(ckpt_path=…)`` reads through AtomicCheckpointIO, which must not unpickle code either."""

    marker, path = tmp_path / "ran", tmp_path / "last.ckpt"
    path.write_bytes(crafted_checkpoint(marker))
    with pytest.raises(Exception, match="holds code"):
        AtomicCheckpointIO().load_checkpoint(path)
    assert not marker.exists()
    AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.ones(2)}, "epoch": 3}, path)
    assert AtomicCheckpointIO().load_checkpoint(path)["epoch"] == 3  # our own checkpoints still load


def test_a_crafted_zoo_checkpoint_is_refused_by_fit_vae(tmp_path: Path) -> None:
    run = tmp_path / "zoo-run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("model: {name: lenet_300_100}\ndata: {dataset: mnist}\n")
    (run / "results.json").write_text('{"finished": true, "rounds": []}\n')
    marker = tmp_path / "ran"
    (run / "checkpoints" / "last.ckpt").write_bytes(
        crafted_checkpoint(marker, {"model.0.weight": torch.zeros(300, 784)}))
    out = subprocess.run([sys.executable, "-m", "lottery.generative", "fit", "vae", str(run),
                          "--out", str(tmp_path / "gens")], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 2, out.stderr
    assert "last.ckpt holds code, not only weights" in out.stderr and "Traceback" not in out.stderr, out.stderr
    assert not marker.exists() and not (tmp_path / "gens").exists()


def test_a_crafted_generator_file_is_refused_unread(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    buf = io.BytesIO()
    torch.save({"format": 1, "kind": "vae", "meta": Payload(marker)}, buf)
    path = tmp_path / file_name("vae", buf.getvalue())  # named by its own hash: it passes the name check
    path.write_bytes(buf.getvalue())
    with pytest.raises(GeneratorError, match=f"init.generator: {path} holds code, not only weights"):
        load_generator(path)
    assert not marker.exists()


def test_a_crafted_cifar_batch_is_refused_and_real_batches_still_load(tmp_path: Path) -> None:
    root = fake_cifar10(tmp_path / "data", per_batch=4)
    arrays = read_cifar10(root, download=False)  # pickled numpy arrays, as the real files hold
    assert arrays.train_x.shape == (20, 3, 32, 32) and arrays.test_y.shape == (4,)
    marker = tmp_path / "ran"
    target = root / "cifar-10-batches-py" / "data_batch_3"
    target.write_bytes(pickle.dumps({b"data": Payload(marker), b"labels": [0]}))
    with pytest.raises(ValueError, match=f"{target} is not a CIFAR-10 batch: it asks to call"):
        read_cifar10(root, download=False)
    assert not marker.exists()


def test_config_error_is_what_the_cli_reports_for_cifar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = fake_cifar10(tmp_path / "data", per_batch=4)
    marker = tmp_path / "ran"
    target = root / "cifar-10-batches-py" / "test_batch"
    target.write_bytes(pickle.dumps(Payload(marker)))
    assert main([str(CONFIGS / "conv2_cifar10.yaml"), f"data.root={root}", "data.download=false", "data.val_size=4",
                 f"output_dir={tmp_path / 'out'}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "test_batch is not a CIFAR-10 batch" in err and "\n" not in err, err
    assert not marker.exists() and not (tmp_path / "out").exists()

"""Files a user hands over never run code (issue 20): each crafted file below carries a pickle payload that
would create a marker file when unpickled. Every reader must refuse it with one line naming the file, and
the marker must not exist afterwards — the proof that nothing ran."""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lottery.checkpoints import AtomicCheckpointIO, sidecar
from lottery.config import ConfigError
from lottery.data.sources import read_cifar10
from lottery.export import load_ticket
from lottery.init.learned import GeneratorError, file_name
from lottery.init.learned import load as load_generator
from lottery.train import main
from tests.data_fixtures import fake_cifar10
from tests.test_bad_inputs import error_line
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


def test_a_config_that_names_a_function_never_calls_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``model.name: os:system`` with the command as a keyword: refused before anything is called (issue 31)."""
    marker = tmp_path / "ran"
    config = tmp_path / "payload.yaml"
    config.write_text(f"model:\n  name: 'os:system'\n  kwargs: {{command: 'touch {marker}'}}\n"
                      f"output_dir: {tmp_path / 'runs'}\n")
    assert main([str(config)]) == 2
    err = error_line(capsys)
    assert "'os:system' is a builtin_function_or_method, not an nn.Module class or a registered builder" in err
    assert not marker.exists() and not (tmp_path / "runs").exists()


def test_a_shared_ticket_names_registered_models_only(tmp_path: Path) -> None:
    """A ticket may come from anyone: an import path in it is refused unless the reader trusts its code, and
    even then only an nn.Module class is ever called."""
    marker = tmp_path / "ran"
    ticket = tmp_path / "ticket"
    ticket.mkdir()
    meta = {"format": 1, "round": 0, "dataset": "mnist", "init": {"scheme": "xavier_normal"},
            "model": {"name": "os:system", "kwargs": {"command": f"touch {marker}"}}}
    (ticket / "ticket.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match=r"^ticket: model.name: 'os:system' is an import path, and importing it "
                                          r"would run that module's code; load it only if you trust its source"):
        load_ticket(ticket)
    with pytest.raises(ConfigError, match="not an nn.Module class or a registered builder"):
        load_ticket(ticket, trust_code=True)
    assert not marker.exists()
    meta["model"] = {"name": "tests.custom_model:TinyNet", "kwargs": {}}
    (ticket / "ticket.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match="is an import path"):
        load_ticket(ticket)
    for field, bad in (("round", -1), ("dataset", "nope"), ("model", "lenet_300_100"), ("init", [1])):
        (ticket / "ticket.json").write_text(json.dumps({**meta, field: bad}))
        with pytest.raises(ConfigError, match=f"ticket: .*ticket.json: {field} is not valid"):
            load_ticket(ticket)

"""Regression tests for defects found by trying the tools as a new user would (issue 13)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lottery.config import load
from lottery.train import main
from tests.lightning_helpers import crash_at_epoch
from tests.test_train_cli import CONFIGS, QUICK, needs_mnist, quick_run


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
    from lottery.config import PruneConfig
    from tests.lightning_helpers import PlainClassifier, synthetic, trainer

    imp = LotteryTicket(
        PruneConfig(rounds=2, epochs_per_round=1, rewind="step", rewind_step=10_000, output_rate=None), verbose=False
    )
    with pytest.raises(ValueError, match="rewind_step: 10000 is not valid; round 1 ended before that step"):
        trainer(callbacks=[imp]).fit(PlainClassifier(), *synthetic())


@needs_mnist
def test_resuming_with_another_thread_count_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from lottery.runner import run_dir
    from tests.data_fixtures import REAL_ROOT

    monkeypatch.setenv("LOTTERY_DATA", str(REAL_ROOT))
    args = [str(CONFIGS / "lenet300_mnist.yaml"), "prune.rounds=3", "prune.epochs_per_round=1",
            f"output_dir={tmp_path}", *QUICK]  # QUICK ends with train.threads=1
    crash_at_epoch(2, lambda: main(args))
    monkeypatch.setenv("LOTTERY_DATA", str(REAL_ROOT))
    assert main([*args, "train.threads=2"]) == 2
    err = capsys.readouterr().err
    assert "train.threads: " in err and "was written with 1 threads; resuming with 2" in err
    assert (run_dir(load(args[0], args[1:])) / "checkpoints" / "last.ckpt").is_file()  # nothing lost
    assert main(args) == 0  # the same thread count resumes


def _flip_middle(data: bytes) -> bytes:
    i = len(data) // 2
    return data[:i] + bytes([data[i] ^ 0x10]) + data[i + 1 :]


def _nan_weights(data: bytes) -> bytes:
    import io

    import torch

    ckpt = torch.load(io.BytesIO(data), weights_only=True)
    next(iter(ckpt["state_dict"].values())).view(-1)[:3] = float("nan")
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    return buf.getvalue()


def _foreign(data: bytes) -> bytes:
    import io

    import torch

    ckpt = torch.load(io.BytesIO(data), weights_only=True)
    ckpt["state_dict"] = {k: torch.zeros(3, 3) for k in ckpt["state_dict"]}
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    return buf.getvalue()


CORRUPTIONS = [
    ("bit flip", _flip_middle, True, "is corrupted (its content hash differs"),
    ("truncated", lambda d: d[: len(d) // 3], False, "cannot be read (truncated, or not a checkpoint"),
    ("empty", lambda d: b"", False, "is empty"),
    ("random bytes", lambda d: bytes(range(256)) * 64, False, "cannot be read"),
    ("non-finite weights", _nan_weights, False, "holds non-finite values (3 in"),
    ("another network", _foreign, False, "was written for another network"),
]


@needs_mnist
def test_damaged_checkpoints_are_refused_naming_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """Each damage gets one clean line (exit 2) naming the file; the hash sidecar catches bytes that still
    load. Without the sidecar (an older run), the loadable-but-wrong cases are still caught by content."""
    from lottery.checkpoints import sidecar
    from lottery.runner import run_dir
    from tests.data_fixtures import REAL_ROOT

    monkeypatch.setenv("LOTTERY_DATA", str(REAL_ROOT))
    args = [str(CONFIGS / "lenet300_mnist.yaml"), "prune.rounds=3", "prune.epochs_per_round=1",
            f"output_dir={tmp_path}", *QUICK]
    crash_at_epoch(2, lambda: main(args))
    monkeypatch.setenv("LOTTERY_DATA", str(REAL_ROOT))
    ckpt = run_dir(load(args[0], args[1:])) / "checkpoints" / "last.ckpt"
    pristine, stamp = ckpt.read_bytes(), sidecar(ckpt).read_text()
    assert len(stamp.strip()) == 64 and not list(ckpt.parent.glob(".*.tmp"))  # written whole, hash beside
    for _, damage, needs_stamp, message in CORRUPTIONS:
        for with_stamp in (True, False) if not needs_stamp else (True,):
            ckpt.write_bytes(damage(pristine))
            if with_stamp:
                sidecar(ckpt).write_text(stamp)
            else:
                sidecar(ckpt).unlink(missing_ok=True)
            capsys.readouterr()
            assert main(args) == 2
            err = capsys.readouterr().err.strip()
            expected = message if not with_stamp or message == "is empty" else "content hash differs"
            assert err.startswith(f"error: checkpoint {ckpt} ") and expected in err and "\n" not in err, err
            assert "delete it (or pass --force)" in err and ckpt.is_file()  # nothing deleted for the user
    ckpt.write_bytes(pristine)
    sidecar(ckpt).write_text(stamp)
    assert main(args) == 0  # the intact checkpoint resumes


@pytest.mark.parametrize(("override", "message"), [
    ("train.accelerator=gpu", "train.accelerator: 'gpu' is not valid on this machine"),
    ("train.devices=0", "train.devices: 0 is not valid on this machine"),
    ("train.strategy=nope", "train.strategy: 'nope' is not valid on this machine"),
    ("train.precision=banana", "train.precision: 'banana' is not valid on this machine"),
])
def test_trainer_settings_are_checked_before_anything_is_written(
    override: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    if override.endswith("gpu") and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    from tests.data_fixtures import fake_mnist

    monkeypatch.setenv("LOTTERY_DATA", str(fake_mnist(tmp_path / "data")))
    assert main([str(CONFIGS / "lenet300_mnist.yaml"), override, f"output_dir={tmp_path / 'out'}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {message}") and "\n" not in err, err
    assert not (tmp_path / "out").exists()


UNBOUNDED = [
    ("prune.epochs_per_round=18446744073709551616", "prune.epochs_per_round: 18446744073709551616 is not valid"),
    ("prune.rounds=100000", "prune.rounds: 100000 is not valid; use an integer in 1..10000"),
    ("data.split_seed=-1", "data.split_seed: -1 is not valid"),
    ("prune.control_seed=-5", "prune.control_seed: -5 is not valid"),
    ("prune.prune_seed=18446744073709551616", "prune.prune_seed: 18446744073709551616 is not valid"),
    ("seed=18446744073709551616", "seed: 18446744073709551616 is not valid"),  # not reported as init.seed
    ("init.seed=-3", "init.seed: -3 is not valid"),
    ("prune.sleeping_thresholds=[0.1,-1]", "prune.sleeping_thresholds[1]: -1.0 is not valid"),
    ("prune.sleeping_relative=[-0.5]", "prune.sleeping_relative[0]: -0.5 is not valid"),
    ("prune.sleeping_check=-0.1", "prune.sleeping_check: -0.1 is not valid"),
]


@pytest.mark.parametrize(("override", "message"), UNBOUNDED, ids=[o for o, _ in UNBOUNDED])
def test_unbounded_values_get_one_line_naming_the_field(override: str, message: str, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(CONFIGS / "lenet300_mnist.yaml"), override, f"output_dir={tmp_path / 'out'}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {message}") and "\n" not in err, err
    assert not (tmp_path / "out").exists()


def test_an_empty_config_file_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing yet\n")
    assert main([str(empty), f"output_dir={tmp_path / 'out'}"]) == 2
    assert f"config file {str(empty)!r} is empty" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def _fit(cb, model=None, **kwargs):
    from tests.lightning_helpers import PlainClassifier, synthetic, trainer

    model = model or PlainClassifier()
    trainer(callbacks=[cb], **kwargs).fit(model, *synthetic())
    return model


@pytest.mark.parametrize("prelude", ["", "import logging\nlogging.basicConfig()\n"],
                         ids=["no logging set up", "a user's basicConfig at WARNING"])
def test_round_lines_show_once_in_a_plain_script(prelude: str) -> None:
    import subprocess
    import sys

    script = (prelude + "from lottery.callbacks import LotteryTicket\nfrom lottery.init import InitSpec\n"
              "from lottery.config import PruneConfig\n"
              "from tests.lightning_helpers import PlainClassifier, synthetic, trainer\n"
              "prune = PruneConfig(rounds=2, epochs_per_round=1, output_rate=None)\n"
              "trainer(callbacks=[LotteryTicket(prune, init=InitSpec())], max_epochs=-1)"
              ".fit(PlainClassifier(), *synthetic())\n")
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=300,
                         env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout + out.stderr
    assert text.count("round 1/2 · 100.0 % remaining · val ") == 1 and text.count("round 2/2 · 80.") == 1, text
    assert "max_epochs` was not set" not in text  # max_epochs=-1, as the README says


def test_too_few_max_epochs_warn_at_fit_start() -> None:
    from lottery.callbacks import LotteryTicket
    from lottery.config import PruneConfig
    from lottery.init import InitSpec

    cb = LotteryTicket(PruneConfig(rounds=4, epochs_per_round=2, output_rate=None), init=InitSpec(), verbose=False)
    with pytest.warns(UserWarning, match=r"Trainer\(max_epochs=3\) stops before the last of 4 rounds"):
        _fit(cb, max_epochs=3)
    assert len(cb.history) == 1 and not cb.done  # what the warning announced


def test_init_none_on_a_module_without_a_spec_warns_that_it_reinitialises() -> None:
    from lottery.callbacks import LotteryTicket
    from lottery.config import PruneConfig

    with pytest.warns(UserWarning, match="re-initialised with InitSpec"):
        _fit(LotteryTicket(PruneConfig(rounds=1, epochs_per_round=1, output_rate=None), verbose=False))


def test_output_layer_is_explicit_and_checked() -> None:
    from lottery.callbacks import LotteryTicket
    from lottery.config import PruneConfig
    from lottery.init import InitSpec
    from tests.lightning_helpers import PlainClassifier

    cb = LotteryTicket(
        PruneConfig(rounds=2, rate=0.2, output_rate=0.5, epochs_per_round=1),
        init=InitSpec(),
        output_layer="net.0.weight",
        verbose=False,
    )
    _fit(cb)
    density = {n: m.float().mean().item() for n, m in cb.masks.items()}
    assert density["net.0.weight"] == pytest.approx(0.5, abs=1e-3)
    assert density["net.4.weight"] == pytest.approx(0.8, abs=1e-2)
    model = PlainClassifier()
    model.lottery_output_layer = "net.2.weight"  # a model can name its own output layer (OpenLTH's way)
    cb = LotteryTicket(PruneConfig(rounds=2, output_rate=0.5, epochs_per_round=1), init=InitSpec(), verbose=False)
    _fit(cb, model)
    assert cb.masks["net.2.weight"].float().mean().item() == pytest.approx(0.5, abs=1e-2)
    with pytest.raises(ValueError, match=r"output_layer: 'net\.\*' matches 3 prunable tensors"):
        _fit(
            LotteryTicket(
                PruneConfig(rounds=2, output_rate=0.5, epochs_per_round=1),
                init=InitSpec(),
                output_layer="net.*",
                verbose=False,
            )
        )


def test_multihead_attention_projections_are_prunable_by_default() -> None:
    import torch
    from torch import nn

    from lottery.callbacks import LotteryTicket
    from lottery.config import PruneConfig

    class Attn(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attn = nn.MultiheadAttention(8, 2)
            self.head = nn.Linear(8, 4)

    cb = LotteryTicket(PruneConfig(rounds=2, epochs_per_round=1, output_rate=None))
    cb.validate(Attn())
    assert list(cb.tensors.params) == ["attn.in_proj_weight", "attn.out_proj.weight", "head.weight"]
    assert isinstance(cb.tensors.params["attn.in_proj_weight"], torch.nn.Parameter)


def _gz(blob: bytes) -> bytes:
    import gzip

    return gzip.compress(blob)


def _raw(path: Path) -> bytes:
    import gzip

    return gzip.decompress(path.read_bytes())


DATA_DAMAGE = [
    ("truncated .gz", "train-images-idx3-ubyte.gz", lambda p: p.read_bytes()[: len(p.read_bytes()) // 2],
     "is not a valid gzip file (EOFError"),
    ("bit-flipped .gz", "train-labels-idx1-ubyte.gz",
     lambda p: (b := bytearray(p.read_bytes())).__setitem__(len(b) // 2, b[len(b) // 2] ^ 0xFF) or bytes(b),
     "is not a valid gzip file"),
    ("not gzip at all", "t10k-images-idx3-ubyte.gz", lambda p: b"plain text, not gzip\n" * 10,
     "is not a valid gzip file (BadGzipFile"),
    ("wrong magic", "t10k-labels-idx1-ubyte.gz", lambda p: _gz(b"\x00\x00\x08\x03" + _raw(p)[4:]),
     "is not an IDX file of the expected kind (magic number 0x00000803, expected 0x00000801)"),
    ("fewer labels", "train-labels-idx1-ubyte.gz",
     lambda p: _gz(b"\x00\x00\x08\x01" + (299).to_bytes(4, "big") + _raw(p)[8:8 + 299]),
     "holds 300 images but"),
    ("labels out of range", "t10k-labels-idx1-ubyte.gz", lambda p: _gz(_raw(p)[:8] + bytes([12]) * (len(_raw(p)) - 8)),
     "has labels 12..12; MNIST has classes 0..9"),
]


@pytest.mark.parametrize(("file", "damage", "message"), [d[1:] for d in DATA_DAMAGE], ids=[d[0] for d in DATA_DAMAGE])
def test_damaged_data_files_get_one_line_naming_the_file(file: str, damage, message: str, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from tests.data_fixtures import fake_mnist

    root = fake_mnist(tmp_path / "data")
    target = root / "MNIST" / "raw" / file
    target.write_bytes(damage(target))
    args = [str(CONFIGS / "lenet300_mnist.yaml"), f"data.root={root}", "data.download=false", "data.val_size=50",
            f"output_dir={tmp_path / 'out'}"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and str(target.name) in err and message in err and "\n" not in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("override", "message"), [
    ("output_dir={tmp}/afile", "output_dir: '{tmp}/afile' is not valid; {tmp}/afile is a file, not a folder"),
    ("output_dir={tmp}/afile/sub", "output_dir: '{tmp}/afile/sub' is not valid; {tmp}/afile is a file, not a folder"),
    ("model.name=os.path:join", "model.name: 'os.path:join' did not build a network (join() missing"),
    ("model.name=os:path", "model.name: 'os:path' is not a class or function"),
])
def test_output_dir_and_model_path_errors(override: str, message: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "afile").write_text("in the way\n")
    assert main([str(CONFIGS / "lenet300_mnist.yaml"), override.format(tmp=tmp_path), "data.download=false",
                 f"data.root={tmp_path}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {message.format(tmp=tmp_path)}") and "\n" not in err, err
    assert (tmp_path / "afile").read_text() == "in the way\n"


def test_a_full_disk_is_reported_before_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    import os

    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    assert main([str(CONFIGS / "lenet300_mnist.yaml"), f"output_dir={tmp_path / 'out'}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: output_dir: '{tmp_path / 'out'}' is not writable") and "No space left" in err
    assert not (tmp_path / "out").exists()


@needs_mnist
def test_a_disk_that_fills_after_the_probe_leaves_no_run_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from lottery import runner

    args, path = quick_run(tmp_path, monkeypatch)

    def full(target: Path, text: str) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)  # as a real write gets this far before ENOSPC
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(runner, "write_text", full)
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: output_dir: cannot write the run directory {path} (No space left") and \
        "\n" not in err, err
    assert not path.exists()  # never created, so a rerun starts cleanly


def test_a_repeated_seed_is_named_as_such(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lottery.compare import main as compare

    grid = tmp_path / "g.yaml"
    grid.write_text(f"base: {CONFIGS / 'lenet300_mnist.yaml'}\nstarts: [{{scheme: xavier_normal}}]\nseeds: [1, 2, 1]\n")
    assert compare([str(grid)]) == 2
    assert "grid.seeds: 1 appears more than once in [1, 2, 1]; list each once" in capsys.readouterr().err


@pytest.mark.parametrize(("args", "message"), [
    (["--rows", "100000", "--cols", "100000"], "--rows/--cols: 100000×100000 is not valid; at most 268,435,456"),
    (["--source", "torch", "--test-repro"], "--test-repro: the 'torch' source is not regenerable"),
    (["--corner", "-1"], "--corner: -1 is not valid; use an integer ≥ 0"),
    (["--test-repro", "-2"], "--test-repro: -2 is not valid"),
    (["--rows", "0"], "--rows/--cols: 0×784 is not valid"),
])
def test_inspect_refuses_bad_arguments_in_one_line(args: list[str], message: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from lottery.inspect import main as inspect

    assert inspect(args) == 2
    captured = capsys.readouterr()
    assert captured.err.strip().startswith(f"error: {message}") and "\n" not in captured.err.strip()
    assert captured.out == ""


def test_embedding_padding_rows_stay_zero_and_regenerate() -> None:
    import torch
    from torch import nn

    from lottery.init import InitSpec, initial_value, initialize

    net = nn.Module()
    net.emb = nn.Embedding(10, 4, padding_idx=3)
    net.plain = nn.Embedding(10, 4)
    initialize(net, InitSpec(seed=1))
    assert (net.emb.weight[3] == 0).all() and (net.emb.weight[[0, 1, 2, 4]] != 0).all()
    assert (net.plain.weight[3] != 0).all()
    assert torch.equal(initial_value(net, "emb.weight"), net.emb.weight)


def test_a_failed_checkpoint_write_leaves_the_previous_one_whole(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib
    import os

    import torch

    from lottery.checkpoints import AtomicCheckpointIO, sidecar

    io_ = AtomicCheckpointIO()
    path = tmp_path / "checkpoints" / "last.ckpt"
    io_.save_checkpoint({"state_dict": {"w": torch.ones(3)}, "epoch": 1}, path)
    before = path.read_bytes()
    assert sidecar(path).read_text().strip() == hashlib.sha256(before).hexdigest()

    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space left"):
        io_.save_checkpoint({"state_dict": {"w": torch.zeros(1000)}, "epoch": 2}, path)
    assert path.read_bytes() == before and sorted(p.name for p in path.parent.iterdir()) == [
        "last.ckpt", "last.ckpt.sha256"]  # no temporary left behind, the old pair intact


def test_prune_regenerates_each_tensors_w0_once_per_round_not_once_per_member() -> None:
    from torch import nn

    from lottery.callbacks import LotteryTicket
    from lottery.config import PruneConfig
    from lottery.init import InitSpec, initialize
    from lottery.models.stacked import stack

    net = initialize(stack(nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3)), 4),
                     [InitSpec(seed=s) for s in range(4)])
    cb = LotteryTicket(PruneConfig(rounds=2, criterion="movement", epochs_per_round=1, output_rate=None), verbose=False)
    cb.validate(net)
    cb._start(net)
    calls = []
    original = cb.initial
    cb.initial = lambda module, name, seed_shift=0: calls.append(name) or original(module, name, seed_shift)
    cb._next_level(net, 1)
    assert sorted(calls) == ["0.weight", "2.weight"]  # 2 tensors × 4 members: 2 regenerations, not 8


def test_a_kill_between_checkpoint_and_hash_leaves_a_pair_that_verifies(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The sidecar vouches for the new hash before the checkpoint is renamed into place, so a kill right
    after the rename (before the final sidecar write) leaves a newer, whole checkpoint that still verifies."""
    import hashlib

    import torch

    from lottery import checkpoints
    from lottery.checkpoints import AtomicCheckpointIO, accepted_hashes

    path = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.ones(3)}, "epoch": 1}, path)
    writes = {"n": 0}
    real = checkpoints.write_text

    def killed_after_rename(target: Path, text: str) -> None:
        writes["n"] += 1
        if writes["n"] == 2:  # the sidecar's final write: the process dies here
            raise KeyboardInterrupt
        real(target, text)

    monkeypatch.setattr(checkpoints, "write_text", killed_after_rename)
    with pytest.raises(KeyboardInterrupt):
        AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.zeros(3)}, "epoch": 2}, path)
    new = hashlib.sha256(path.read_bytes()).hexdigest()
    assert torch.load(path, weights_only=True)["epoch"] == 2 and new in accepted_hashes(path)
    net = torch.nn.Module()
    net.w = torch.nn.Parameter(torch.zeros(3))
    with pytest.raises(Exception, match="has no valid global_step"):  # past the hash check: content is judged
        checkpoints.verify(path, net)


@needs_mnist
def test_a_second_process_on_the_same_run_directory_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    import subprocess
    import sys

    args, path = quick_run(tmp_path, monkeypatch)
    holder = subprocess.Popen(  # another process holds the run, as a first `lottery.train` would
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from lottery.rundir import run_lock\n"
         "with run_lock(Path(sys.argv[1])):\n print('held', flush=True); time.sleep(60)", str(path)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert main(args) == 2
        err = capsys.readouterr().err.strip()
        assert err == (f"error: output_dir: {path} is in use by process {holder.pid}; wait for it to finish (or "
                       "stop it) before running the same config again"), err
        assert not path.exists()  # nothing written into the held run
    finally:
        holder.kill()
        holder.wait()
    assert main(args) == 0  # once it is gone, the run goes ahead

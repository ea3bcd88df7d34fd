"""Learned starts (init.source vae / ghn): generator files, regeneration, fit quality, clear errors."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from lottery.atomic import write_bytes
from lottery.callbacks import LotteryTicket
from lottery.config import ConfigError
from lottery.generative.fit import fit_ghn, fit_vae
from lottery.generative.zoo import Zoo, collect, slices
from lottery.init import InitSpec, initial_value, initialize
from lottery.init.learned import GeneratorError, file_name, load, vae_values
from tests.data_fixtures import needs_mnist
from tests.lightning_helpers import PlainClassifier, quick_prune, synthetic, trainer
from tests.test_lottery_callback import RewindProbe

REPO = Path(__file__).resolve().parents[1]
SHAPES = {"net.0.weight": (32, 20), "net.2.weight": (16, 32), "net.4.weight": (4, 16)}


def zoo_weights(seed: int) -> dict[str, torch.Tensor]:
    """'Trained' weights with structure a pointwise init lacks: a per-layer offset and correlated pairs."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for i, (name, shape) in enumerate(SHAPES.items()):
        base = torch.randn(shape, generator=g) * 0.1 * (i + 1)
        base[:, 1::2] = 0.8 * base[:, 0::2] + 0.02 * torch.randn(base[:, 1::2].shape, generator=g)
        out[name] = base + 0.03
    return out


def fake_run(folder: Path, seed: int, model: str = "tests.lightning_helpers:PlainClassifier",
             weights: dict[str, torch.Tensor] | None = None) -> Path:
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump({"model": {"name": model}, "data": {"dataset": "mnist"}}))
    state = {f"model.{k}": v for k, v in (weights or zoo_weights(seed)).items()}
    torch.save({"state_dict": state}, folder / "checkpoints" / "last.ckpt")
    (folder / "results.json").write_text('{"finished": true, "rounds": []}\n')
    return folder


@pytest.fixture(scope="module")
def vae_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("zoo")
    zoo = collect([fake_run(root / f"r{s}", s) for s in range(6)])
    data = fit_vae(zoo, slice_size=4, latent=2, hidden=32, steps=1500, batch=256, progress=False)
    path = root / file_name("vae", data)
    write_bytes(path, data)
    return path


@pytest.fixture(scope="module")
def ghn_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    (train, _), net = synthetic(), PlainClassifier().net
    x, y = train.dataset.tensors
    data, _ = fit_ghn([("plain", net, x, y)], steps=30, progress=False)
    path = tmp_path_factory.mktemp("ghn") / file_name("ghn", data)
    write_bytes(path, data)
    return path


def test_vae_samples_match_the_zoo(vae_file: Path):
    zoo = collect([fake_run(vae_file.parent / f"again{s}", s) for s in range(6)])
    module = PlainClassifier()
    initialize(module, InitSpec(seed=11, source="vae", generator=str(vae_file)))
    for name, ws in zoo.weights.items():
        real = torch.cat([slices(w, 4) for w in ws])
        fake = slices(dict(module.named_parameters())[name].detach().double(), 4)
        assert abs(float(fake.mean() - real.mean())) < 0.15 * float(real.std()), name
        assert abs(float(fake.std() / real.std()) - 1) < 0.12, name
        # the pairs the zoo correlates (inputs 2k, 2k+1) come out correlated, unlike any pointwise start
        corr = torch.corrcoef(fake[:, :2].T)[0, 1]
        assert float(corr) > 0.5, (name, float(corr))


def test_same_spec_same_bits_in_a_new_process_and_other_thread_counts(vae_file: Path, ghn_file: Path):
    for source, path in (("vae", vae_file), ("ghn", ghn_file)):
        spec = InitSpec(seed=3, source=source, generator=str(path))
        module = initialize(PlainClassifier(), spec)
        here = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in module.parameters())).hexdigest()
        script = (
            "import hashlib, sys, torch\n"
            "from lottery.init import InitSpec, initialize\n"
            "from tests.lightning_helpers import PlainClassifier\n"
            "torch.set_num_threads(int(sys.argv[3]))\n"
            "m = initialize(PlainClassifier(), InitSpec(seed=3, source=sys.argv[1], generator=sys.argv[2]))\n"
            "print(hashlib.sha256(b''.join(p.detach().numpy().tobytes() for p in m.parameters())).hexdigest())\n"
        )
        for threads in ("1", "2"):
            out = subprocess.run([sys.executable, "-c", script, source, str(path), threads], cwd=REPO,
                                 capture_output=True, text=True, check=True)
            assert out.stdout.strip() == here, (source, threads)
        other = initialize(PlainClassifier(), spec.replace(seed=4))
        assert not torch.equal(other.net[0].weight, module.net[0].weight)  # the seed picks the network


@pytest.mark.parametrize("source", ["vae", "ghn"])
def test_callback_rewinds_equal_the_regenerated_w0(source: str, vae_file: Path, ghn_file: Path):
    spec = InitSpec(seed=5, source=source, generator=str(vae_file if source == "vae" else ghn_file))
    cb = LotteryTicket(
        quick_prune(rounds=3),
        init=spec,
    )
    probe = RewindProbe(cb)
    model = PlainClassifier()
    train, val = synthetic()
    trainer(max_epochs=3, callbacks=[cb, probe]).fit(model, train, val)
    assert probe.checked == [1, 2]
    fresh = initialize(PlainClassifier(), spec)
    assert torch.equal(initial_value(model, "net.0.weight"), fresh.net[0].weight.detach())


def test_a_wider_linear_layer_is_sliced_and_rescaled(vae_file: Path):
    gen = load(vae_file, "vae")
    wide = torch.nn.Linear(45, 16)  # 45 inputs: 11 slices of 4 plus one cut to 1; the zoo layer had 32
    w = vae_values(gen, 0, "net.2.weight", tuple(wide.weight.shape))
    assert w.shape == (16, 45)
    assert abs(float(w.std()) / (gen.layers["net.2.weight"].std * (32 / 45) ** 0.5) - 1) < 0.25


def test_bad_generator_files_are_refused_clearly(vae_file: Path, ghn_file: Path, tmp_path: Path):
    data = bytearray(vae_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    corrupt = tmp_path / vae_file.name
    corrupt.write_bytes(bytes(data))
    with pytest.raises(GeneratorError, match="is corrupt: its content hash"):
        load(corrupt)
    renamed = tmp_path / "my-generator.pt"
    renamed.write_bytes(vae_file.read_bytes())
    with pytest.raises(GeneratorError, match="not a generator file name"):
        load(renamed)
    with pytest.raises(GeneratorError, match="does not exist"):
        load(tmp_path / "vae-000000000000.pt")
    with pytest.raises(GeneratorError, match="is a ghn generator, but init.source is 'vae'"):
        load(ghn_file, "vae")
    gen = load(vae_file, "vae")
    with pytest.raises(GeneratorError, match="has no VAE for layer 'conv.weight'"):
        vae_values(gen, 0, "conv.weight", (8, 3, 3, 3))
    with pytest.raises(ValueError, match="init.generator: init.source 'vae' needs a generator file"):
        InitSpec(source="vae")
    with pytest.raises(ValueError, match="only used by init.source vae or ghn"):
        InitSpec(source="hash", generator=str(vae_file))
    blob = torch.load(ghn_file, weights_only=True)  # NaN weights under their own, right hash name
    next(iter(blob["state"]["hypernet"].values())).view(-1)[0] = float("nan")
    buf = io.BytesIO()
    torch.save(blob, buf)
    nan = tmp_path / file_name("ghn", buf.getvalue())
    nan.write_bytes(buf.getvalue())
    with pytest.raises(GeneratorError, match=r"is damaged: it holds non-finite weights \(1 in 'hypernet'/"):
        load(nan)


def test_the_cli_refuses_a_corrupt_generator_before_training(vae_file: Path, tmp_path: Path):
    data = bytearray(vae_file.read_bytes())
    data[100] ^= 1
    bad = tmp_path / vae_file.name
    bad.write_bytes(bytes(data))
    out = subprocess.run([sys.executable, "-m", "lottery.train", str(REPO / "configs/lenet300_mnist.yaml"),
                          "init.source=vae", f"init.generator={bad}", f"output_dir={tmp_path / 'runs'}"],
                         cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "is corrupt" in lines[0] and "Traceback" not in out.stderr
    assert not (tmp_path / "runs").exists()
    # a generator of three Linear layers fits no conv layer, by name or position: named before any training
    out = subprocess.run([sys.executable, "-m", "lottery.train", str(REPO / "configs/lenet5_mnist.yaml"),
                          "init.source=vae", f"init.generator={vae_file}", f"output_dir={tmp_path / 'runs'}"],
                         cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 2 and "has no VAE for layer '0.0.weight' (weight tensor 1, shape (6, 1, 5, 5))" \
        in out.stderr, out.stderr
    assert not (tmp_path / "runs").exists()


def test_a_vae_serves_a_users_own_module_by_position() -> None:
    """The committed LeNet-300-100 VAE is keyed '1.weight', '3.weight', '5.weight'; a user's own MLP names its
    layers net.0/net.2/net.4 and still gets a learned start, regenerable, with the zoo layers' spread."""


    path = next(p for p in sorted((REPO / "generators").glob("vae-*.pt"))
                if torch.load(p, weights_only=True)["meta"]["model"] == "lenet_300_100")

    class Mine(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100), nn.ReLU(),
                                     nn.Linear(100, 10))

    spec = InitSpec(seed=4, source="vae", generator=str(path))
    mine, zoo_named = Mine(), nn.Sequential(nn.Flatten(), nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100),
                                            nn.ReLU(), nn.Linear(100, 10))
    initialize(mine, spec)
    initialize(zoo_named, spec)
    for a, b in (("net.1.weight", "1.weight"), ("net.3.weight", "3.weight"), ("net.5.weight", "5.weight")):
        w, ref = mine.get_parameter(a), zoo_named.get_parameter(b)
        assert torch.equal(initial_value(mine, a), w)  # regenerated bit for bit
        assert abs(float(w.std()) / float(ref.std()) - 1) < 0.05  # the same layer's VAE, other draws


def test_the_zoo_refuses_empty_mixed_pruned_and_weightless_runs(tmp_path: Path):
    with pytest.raises(ConfigError, match="no runs given"):
        collect([])
    a = fake_run(tmp_path / "a", 0)
    b = fake_run(tmp_path / "b", 1, model="lenet_300_100")
    with pytest.raises(ConfigError, match="fit one generator per model"):
        collect([a, b])
    pruned = zoo_weights(2)
    pruned["net.2.weight"][:, :16] = 0
    with pytest.raises(ConfigError, match="50.0 % zeros, so it was pruned"):
        collect([a, fake_run(tmp_path / "c", 2, weights=pruned)])
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "config.yaml").write_text("model: {name: x}\ndata: {dataset: mnist}\n")
    with pytest.raises(ConfigError, match="did not finish"):  # a killed run: its weights are half-trained
        collect([tmp_path / "d"])
    (tmp_path / "d" / "results.json").write_text('{"finished": true, "rounds": []}\n')
    with pytest.raises(ConfigError, match="has no checkpoints/last.ckpt"):
        collect([tmp_path / "d"])


@needs_mnist
def test_zoo_fit_and_train_from_the_command_line(mnist_root: Path, tmp_path: Path):
    """The user's path: train a tiny zoo, fit a VAE on it, run IMP from the learned start."""
    base = [str(REPO / "configs/lenet300_mnist.yaml"), "prune.epochs_per_round=1", "data.train_subset=500",
            "data.val_size=500", "data.test_subset=500", "train.progress_bar=false", "train.threads=1",
            f"output_dir={tmp_path / 'runs'}"]
    run = [sys.executable, "-m", "lottery.generative"]
    out = subprocess.run([*run, "zoo", *base, "--seeds", "0", "1"], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    runs = out.stdout.split()
    assert len(runs) == 2 and all((Path(r) / "checkpoints" / "last.ckpt").is_file() for r in runs)
    out = subprocess.run([*run, "fit", "vae", *runs, "--steps", "100", "--out", str(tmp_path / "gen")],
                         cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    gen = Path(out.stdout.strip())
    assert gen.is_file() and gen.name == file_name("vae", gen.read_bytes())
    out = subprocess.run([sys.executable, "-m", "lottery.train", *base, "prune.rounds=2", "init.source=vae",
                          f"init.generator={gen}"], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "round 1/1" in out.stderr and gen.stem in out.stderr


def test_conv_kernels_are_the_slices_and_other_kernel_sizes_are_refused(tmp_path: Path):
    g = torch.Generator().manual_seed(0)
    centre = torch.zeros(3, 3, dtype=torch.float64)
    centre[1, 1] = 0.3  # every kernel peaks at its centre: a structure the VAE must learn
    kernels = [torch.randn(8, 3, 3, 3, generator=g, dtype=torch.float64) * 0.05 + centre for _ in range(4)]
    data = fit_vae(Zoo("tiny", ["r0"], ["mnist"], {"c.weight": kernels}), latent=2, hidden=32, steps=800,
                   progress=False)
    path = tmp_path / file_name("vae", data)
    path.write_bytes(data)
    gen = load(path, "vae")
    w = vae_values(gen, 1, "c.weight", (16, 6, 3, 3))  # other channel counts: more kernels, rescaled per fan_in
    assert w.shape == (16, 6, 3, 3)
    mean_kernel = w.mean((0, 1)) * (6 / 3) ** 0.5
    assert float(mean_kernel[1, 1]) > 0.2 and float(mean_kernel.flatten()[[0, 2, 6, 8]].abs().max()) < 0.05
    with pytest.raises(GeneratorError, match="has 5×5 kernels but the VAE generates 3×3 kernels"):
        vae_values(gen, 1, "c.weight", (8, 3, 5, 5))
    with pytest.raises(GeneratorError, match="a 4-d weight cannot be sliced into a 2-d one"):
        vae_values(gen, 1, "c.weight", (8, 27))

import contextlib
import hashlib
import io
import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy import stats

from lottery.generators import STANDARD_NORMAL, STANDARD_UNIFORM, HashStream, Transform, draw, has_kernel
from lottery.generators.hash import MASK64, hash_u64, name_stream, splitmix64, stream_key
from tests import numpy_reference as ref

# Steele, Lea & Flood's SplitMix64, counter form (shared reference §1).
SEED0 = [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F, 0xF88BB8A8724C81EC, 0x1B39896A51A8749B]
SEED1234567 = [6457827717110365317, 3203168211198807973, 9817491932198370423, 4593380528125082431, 16408922859458223821]

# Frozen outputs of this project's generator. A change here changes every w0 users ever trained from.
GOLDEN_KEYS = {(0, "fc1.weight"): 0x2A588B10C4833809, (42, "features.0.weight"): 0x883971CE7CCF4B04}
GOLDEN_NORMAL_BITS = {
    (0, "fc1.weight"): [0x3F32FBA1, 0xBF1B0EFE, 0x3E6592FE, 0x3F27B236, 0xBF5901FB, 0xBEBE8884],
    (42, "features.0.weight"): [0xBFD370D9, 0xBF513144, 0xBFE0966D, 0x3F84F10F, 0xBFC0180F, 0x3FB0DC93],
}


def float_bits(t: torch.Tensor) -> list[int]:
    return [x & 0xFFFFFFFF for x in t.float().view(torch.int32).tolist()]


def test_splitmix64_published_vectors():
    assert [splitmix64(0, i) for i in range(5)] == SEED0
    assert [splitmix64(1234567, i) for i in range(5)] == SEED1234567


def test_torch_hash_matches_published_vectors():
    got = [x & MASK64 for x in hash_u64(1234567, 0, 5).tolist()]
    assert got == SEED1234567


def test_name_stream_is_stable_blake2b():
    expected = int.from_bytes(hashlib.blake2b(b"fc1.weight", digest_size=8).digest(), "little")
    assert name_stream("fc1.weight") == expected
    assert name_stream("fc1.weight") != name_stream("fc2.weight")


@pytest.mark.parametrize(("seed", "name"), sorted(GOLDEN_KEYS))
def test_golden_keys(seed, name):
    assert stream_key(seed, name) == GOLDEN_KEYS[(seed, name)]


@pytest.mark.parametrize(("seed", "name"), sorted(GOLDEN_NORMAL_BITS))
@pytest.mark.parametrize("use_kernel", [True, False])
def test_golden_normals(seed, name, use_kernel):
    got = draw(HashStream(stream_key(seed, name)), 6, STANDARD_NORMAL, use_kernel=use_kernel)
    assert float_bits(got) == GOLDEN_NORMAL_BITS[(seed, name)]


@pytest.mark.parametrize("use_kernel", [True, False])
def test_numpy_reference_bit_for_bit_on_million_values(use_kernel):
    key, n = stream_key(5, "layer.weight"), 1_200_000
    u = draw(HashStream(key), n, STANDARD_UNIFORM, torch.float64, use_kernel=use_kernel).numpy()
    np.testing.assert_array_equal(u, ref.uniforms(key, 0, n))
    z = draw(HashStream(key), n, STANDARD_NORMAL, torch.float32, use_kernel=use_kernel).numpy()
    np.testing.assert_array_equal(z, ref.normals(key, 0, n).astype(np.float32))


def test_raw_hashes_match_numpy():
    key = stream_key(9, "x")
    got = hash_u64(key, 1000, 100_000).numpy().view(np.uint64)
    np.testing.assert_array_equal(got, ref.hashes(key, 1000, 100_000))


@pytest.mark.skipif(not has_kernel(), reason="C kernel not built")
@pytest.mark.parametrize(
    "transform", [STANDARD_NORMAL, Transform("truncated_normal", scale=0.3), Transform.uniform(-0.2, 0.2)]
)
def test_kernel_equals_torch_path(transform):
    """float32 is bit-identical; in float64 the normal tails may differ in the last ulp (libm's log)."""
    stream = HashStream(stream_key(1, "w"))
    assert torch.equal(draw(stream, 700_001, transform), draw(stream, 700_001, transform, use_kernel=False))
    a = draw(stream, 700_001, transform, torch.float64)
    b = draw(stream, 700_001, transform, torch.float64, use_kernel=False)
    torch.testing.assert_close(a, b, rtol=2e-15, atol=0)
    assert int((a != b).sum()) < a.numel() // 100


def test_random_access_offsets_agree():
    stream = HashStream(stream_key(3, "w"))
    whole = draw(stream, 10_000, STANDARD_NORMAL)
    part = draw(stream, 100, STANDARD_NORMAL, start=5_000)
    assert torch.equal(whole[5_000:5_100], part)


def test_uniform_is_strictly_inside_unit_interval():
    u = draw(HashStream(1), 1_000_000, STANDARD_UNIFORM, torch.float64)
    assert float(u.min()) > 0.0 and float(u.max()) < 1.0


def test_kolmogorov_smirnov_against_normal():
    z = draw(HashStream(stream_key(11, "ks")), 200_000, STANDARD_NORMAL, torch.float64).numpy()
    assert stats.kstest(z, "norm").pvalue > 0.01
    u = draw(HashStream(stream_key(11, "ksu")), 200_000, STANDARD_UNIFORM, torch.float64).numpy()
    assert stats.kstest(u, "uniform").pvalue > 0.01


DIGEST = (
    "import hashlib, torch; from lottery.init import InitSpec, initialize; from torch import nn\n"
    "for src in ('hash', 'sobol', 'sobol-paper'):\n"
    "    m = initialize(nn.Sequential(nn.Linear(300, 200), nn.Linear(200, 10)), InitSpec(seed=4, source=src))\n"
    "    print(hashlib.sha256(b''.join(p.detach().numpy().tobytes() for p in m.parameters())).hexdigest())\n"
)


def test_bit_identical_across_processes():
    here: dict = {}
    exec(DIGEST, here)  # noqa: S102 - the same script in this process and in a fresh one
    fresh = subprocess.run([sys.executable, "-c", DIGEST], capture_output=True, text=True, check=True).stdout
    lines = fresh.split()
    assert len(lines) == 3 and len(set(lines)) == 3

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(DIGEST, {})  # noqa: S102
    assert buf.getvalue().split() == lines

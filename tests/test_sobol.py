import numpy as np
import pytest
import torch
from scipy.stats import qmc

from lottery.generators import STANDARD_NORMAL, STANDARD_UNIFORM, HashStream, SobolStream, draw, has_kernel
from lottery.generators.sobol import MAX_DIM, direction_numbers, sobol_int
from lottery.init import InitSpec, initial_value, initialize


def test_direction_numbers_equal_scipy():
    engine = qmc.Sobol(MAX_DIM, scramble=False)
    np.testing.assert_array_equal(direction_numbers().astype(np.int64), engine._sv.astype(np.int64))


def test_first_points_equal_scipy_all_paths():
    dims = [0, 1, 2, 7, 100, 5000, MAX_DIM - 1]
    pts = qmc.Sobol(MAX_DIM, scramble=False).random(1024)
    for dim in dims:
        for use_kernel in (True, False):
            got = draw(SobolStream(dim), 1024, STANDARD_UNIFORM, torch.float64, use_kernel=use_kernel)
            np.testing.assert_array_equal(got.numpy(), pts[:, dim])


def check_points(first: int, expected: np.ndarray, rng: np.random.Generator) -> int:
    """Rows of ``expected`` are scipy's points first, first+1, …; compare every dimension it holds."""
    sv = direction_numbers()[: expected.shape[1]]
    for n, row in enumerate(expected, start=first):
        gray = n ^ (n >> 1)
        set_bits = [b for b in range(30) if gray >> b & 1]
        np.testing.assert_array_equal(np.bitwise_xor.reduce(sv[:, set_bits], axis=1) * 2.0**-30, row)
        dims = rng.integers(0, expected.shape[1], 12)
        index = torch.full((1,), n, dtype=torch.int64)
        np.testing.assert_array_equal([sobol_int(int(d), index).item() * 2.0**-30 for d in dims], row[dims])
        for d in dims[:4].tolist():
            assert draw(SobolStream(d), 1, STANDARD_UNIFORM, torch.float64, start=n).item() == row[d]
    return len(expected)


def test_arbitrary_index_and_dimension_equal_scipy():
    """Random access: point n of dimension k, all 21201 dimensions, n up to 2^20 (scipy is sequential)."""
    rng = np.random.default_rng(0)
    engine = qmc.Sobol(MAX_DIM, scramble=False)
    engine.fast_forward(2**20 - 1)
    assert check_points(2**20 - 1, engine.random(2), rng) == 2
    narrow = qmc.Sobol(256, scramble=False)
    for n in rng.integers(1, 2**20, 3).tolist():
        narrow.reset()
        narrow.fast_forward(n)
        assert check_points(n, narrow.random(1), rng) == 1


@pytest.mark.skipif(not has_kernel(), reason="C kernel not built")
def test_scrambled_kernel_equals_torch_path():
    stream = SobolStream.scrambled_for(12345, 17, 300_000)
    a = draw(stream, 300_000, STANDARD_NORMAL)
    b = draw(stream, 300_000, STANDARD_NORMAL, use_kernel=False)
    assert torch.equal(a, b)


def test_scrambled_index_is_a_permutation_keeping_strata():
    n = 4096
    stream = SobolStream.scrambled_for(99, 3, n)
    u = draw(stream, n, STANDARD_UNIFORM, torch.float64).numpy()
    counts = np.bincount((u * 256).astype(int), minlength=256)
    assert (counts == n // 256).all()  # a full 2^12 block: every 1/256 stratum holds exactly 16 points


@pytest.mark.parametrize("n", [1000, 5000])
def test_sobol_more_uniform_than_hash(n):
    sob = draw(SobolStream.scrambled_for(5, 9, n), n, STANDARD_UNIFORM, torch.float64).numpy()
    hsh = draw(HashStream(5), n, STANDARD_UNIFORM, torch.float64).numpy()
    d_sobol = qmc.discrepancy(sob.reshape(-1, 1))
    d_hash = qmc.discrepancy(hsh.reshape(-1, 1))
    assert d_sobol < d_hash / 10


def mean_abs_column_corr(w: torch.Tensor) -> float:
    c = np.corrcoef(w.numpy().T)
    return float(np.abs(c[~np.eye(len(c), dtype=bool)]).mean())


def test_sobol_source_columns_uncorrelated():
    layer = torch.nn.Linear(784, 64)  # torch weight (64, 784); the kernel (784 × 64) has 64 columns
    initialize(layer, InitSpec(seed=0, source="sobol", scheme="xavier_normal"))
    assert mean_abs_column_corr(layer.weight.detach().t()) < 0.06


def test_sobol_paper_layout_is_the_papers():
    """W[j, i] = Φ⁻¹(sobol_s(1 + i·fan_out + j)) · std: the Keras (fan_in, fan_out) kernel in C order."""
    layer = torch.nn.Linear(6, 4)
    spec = InitSpec(seed=0, source="sobol-paper", scheme="lecun_uniform", sobol_start_dim=3)
    initialize(layer, spec)
    pts = qmc.Sobol(3, scramble=False).random(25)[1:, 2]
    bound = np.sqrt(3.0 / 6)
    expected = (pts * 2 * bound - bound).reshape(6, 4).T
    np.testing.assert_allclose(layer.weight.detach().numpy(), expected, rtol=1e-6, atol=1e-7)
    assert torch.equal(initial_value(layer, "weight"), layer.weight.detach())

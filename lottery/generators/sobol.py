"""Addressable Sobol' points: point n of dimension k computed directly, in scipy's Gray-code order.

Direction numbers are Joe–Kuo ``new-joe-kuo-6.21201`` as shipped inside scipy. ``SobolStream`` gives
either scipy's unscrambled values (the QRNG paper's mode) or hash-based Owen scrambling of both the value
and the index (Burley 2020). Scrambling the index matters: consecutive indices of one dimension laid out
row-major in a weight matrix make columns XOR-translates of one another (shared reference §2).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import numpy as np
import torch

from lottery.generators.hash import mix64

BITS = 30
MAX_DIM = 21201


@functools.lru_cache(maxsize=1)
def direction_numbers() -> np.ndarray:
    """All 21201 × 30 direction numbers sv[k, b] = m[k, b] << (bits − 1 − b), as uint32."""
    import scipy.stats

    path = os.path.join(os.path.dirname(scipy.stats.__file__), "_sobol_direction_numbers.npz")
    with np.load(path) as data:
        poly, vinit = data["poly"].astype(np.int64), data["vinit"].astype(np.int64)
    m = np.zeros((MAX_DIM, BITS), dtype=np.int64)
    m[0, :] = 1
    degree = np.floor(np.log2(np.maximum(poly, 1))).astype(np.int64)
    for d in range(1, degree.max() + 1):
        rows = np.nonzero(degree == d)[0]
        rows = rows[rows > 0]
        m[rows, :d] = vinit[rows, :d]
        p = poly[rows]
        for j in range(d, BITS):  # Joe–Kuo recurrence, vectorised over dimensions of equal degree
            new = m[rows, j - d] ^ (m[rows, j - d] << d)
            for k in range(1, d):
                coeff = (p >> (d - k)) & 1
                new ^= coeff * (m[rows, j - k] << k)
            m[rows, j] = new
    shifts = BITS - 1 - np.arange(BITS)
    return (m << shifts).astype(np.uint32)


def check_dimension(dim: int) -> None:
    if not 0 <= dim < MAX_DIM:
        raise ValueError(f"Sobol' dimension {dim} is outside 0..{MAX_DIM - 1} (Joe–Kuo 21201 dimensions)")


def sobol_int(dim: int, index: torch.Tensor) -> torch.Tensor:
    """Raw 30-bit Sobol' integers of dimension ``dim`` (0-based, scipy's column) at int64 indices."""
    check_dimension(dim)
    sv = direction_numbers()[dim].astype(np.int64)
    gray = index ^ (index >> 1)
    x = torch.zeros_like(index)
    for b in range(BITS):
        x.bitwise_xor_(((gray >> b) & 1) * int(sv[b]))
    return x


def rev32(x: torch.Tensor) -> torch.Tensor:
    for shift, mask in ((1, 0x55555555), (2, 0x33333333), (4, 0x0F0F0F0F), (8, 0x00FF00FF)):
        x = ((x >> shift) & mask) | ((x & mask) << shift)
    return ((x >> 16) | (x << 16)) & 0xFFFFFFFF


def owen32(x: torch.Tensor, seed: int) -> torch.Tensor:
    """Nested uniform (Owen) scramble of 32-bit integers held in int64: Laine–Karras on reversed bits."""
    x = (rev32(x) + seed) & 0xFFFFFFFF
    for c in (0x6C50B47C, 0xB82F1E52, 0xC7AFE638, 0x8D22F6E6):
        x = (x ^ (x * c)) & 0xFFFFFFFF
    return rev32(x)


@dataclass(frozen=True)
class SobolStream:
    """One Sobol' dimension as a stream of uniforms.

    Unscrambled: u_n = x_n · 2^-30, exactly scipy's ``Sobol(d, scramble=False)`` value. Scrambled: index n is
    Owen-permuted within ``index_bits`` bits, the value is Owen-scrambled to 32 bits, u = (x + 0.5) · 2^-32.
    """

    dim: int
    scrambled: bool = False
    index_bits: int = 30
    index_seed: int = 0
    value_seed: int = 0

    @staticmethod
    def scrambled_for(key: int, dim: int, numel: int) -> SobolStream:
        seeds = mix64(key ^ 0x50B01)
        bits = max(1, (max(numel, 2) - 1).bit_length())
        if bits > BITS:
            raise ValueError(f"a scrambled Sobol' tensor holds at most 2^{BITS} elements, got {numel}")
        return SobolStream(dim, True, bits, seeds >> 32, seeds & 0xFFFFFFFF)

    def uniform(self, offset: int, n: int, device: torch.device | str) -> torch.Tensor:
        idx = torch.arange(offset, offset + n, dtype=torch.int64, device=device)
        if self.scrambled:
            idx = owen32(idx, self.index_seed) & ((1 << self.index_bits) - 1)
            x = owen32(sobol_int(self.dim, idx) << (32 - BITS), self.value_seed)
            return x.double().add_(0.5).mul_(2.0**-32)
        return sobol_int(self.dim, idx).double().mul_(2.0**-BITS)

    def c_args(self, offset: int) -> tuple:
        sv = direction_numbers()[self.dim].tobytes()
        return (sv, offset, BITS, int(self.scrambled), self.index_bits, self.index_seed, self.value_seed)

    c_kernel = "sobol_fill"

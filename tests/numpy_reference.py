"""An independent numpy (uint64) implementation of the hash source, the oracle for lottery.generators."""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri as scipy_ndtri

GAMMA = np.uint64(0x9E3779B97F4A7C15)


def mix64(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def hashes(key: int, offset: int, n: int) -> np.ndarray:
    with np.errstate(over="ignore"):
        i = np.arange(offset + 1, offset + n + 1, dtype=np.uint64)
        return mix64(np.uint64(key) + i * GAMMA)


def uniforms(key: int, offset: int, n: int) -> np.ndarray:
    return ((hashes(key, offset, n) >> np.uint64(12)).astype(np.float64) + 0.5) * 2.0**-52


def normals(key: int, offset: int, n: int) -> np.ndarray:
    """scipy's ndtri (Cephes) rather than our AS241: agreement after the float32 cast checks both."""
    return scipy_ndtri(uniforms(key, offset, n))

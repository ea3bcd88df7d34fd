"""SplitMix64 as a counter-based hash: element i of stream (seed, name) is mix(key + (i + 1)·γ).

The key mixes the seed with a stable 64-bit digest of the parameter's qualified name (BLAKE2b, never
Python's salted ``hash()``), so adding or renaming another layer never changes this layer's values.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch

MASK64 = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15
MUL1 = 0xBF58476D1CE4E5B9
MUL2 = 0x94D049BB133111EB


def mix64(z: int) -> int:
    """The SplitMix64 finaliser on a Python int (the reference for keys and golden vectors)."""
    z &= MASK64
    z = ((z ^ (z >> 30)) * MUL1) & MASK64
    z = ((z ^ (z >> 27)) * MUL2) & MASK64
    return z ^ (z >> 31)


def splitmix64(seed: int, index: int) -> int:
    """Output ``index`` (0-based) of SplitMix64 seeded with ``seed``, by random access."""
    return mix64(seed + (index + 1) * GAMMA)


def name_stream(name: str) -> int:
    return int.from_bytes(hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest(), "little")


def stream_key(seed: int, name: str) -> int:
    """The 64-bit key of one tensor: a bijection of the seed for a fixed name and vice versa."""
    return splitmix64(seed, name_stream(name))


def signed(x: int) -> int:
    """A uint64 as the int64 with the same bits (torch has no usable uint64 arithmetic on CPU)."""
    return x - (1 << 64) if x >= 1 << 63 else x


def srl(x: torch.Tensor, k: int) -> torch.Tensor:
    """Logical right shift of int64 tensors (torch's >> is arithmetic)."""
    return (x >> k) & ((1 << (64 - k)) - 1)


def mix64_(z: torch.Tensor) -> torch.Tensor:
    """In-place SplitMix64 finaliser on int64 tensors; multiplication wraps like uint64."""
    z.bitwise_xor_(srl(z, 30)).mul_(signed(MUL1))
    z.bitwise_xor_(srl(z, 27)).mul_(signed(MUL2))
    return z.bitwise_xor_(srl(z, 31))


def hash_u64(key: int, offset: int, n: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """The raw 64-bit hashes of elements offset … offset+n−1, as int64 bit patterns."""
    z = torch.arange(offset + 1, offset + n + 1, dtype=torch.int64, device=device)
    z.mul_(signed(GAMMA)).add_(signed(key & MASK64))
    return mix64_(z)


@dataclass(frozen=True)
class HashStream:
    """Uniforms u_i = (⌊h_i / 2^12⌋ + 0.5) · 2^-52, strictly inside (0, 1), for one tensor."""

    key: int

    def uniform(self, offset: int, n: int, device: torch.device | str) -> torch.Tensor:
        return srl(hash_u64(self.key, offset, n, device), 12).double().add_(0.5).mul_(2.0**-52)

    def c_args(self, offset: int) -> tuple:
        return (self.key & MASK64, offset)

    c_kernel = "hash_fill"

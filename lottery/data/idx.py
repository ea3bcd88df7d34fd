"""Read IDX files (the MNIST format), gzipped or not, straight into a uint8 tensor.

torchvision ≥ 0.29 reads only the uncompressed files; decoding here lets a read-only folder of ``.gz``
files serve directly, with no extracted copy.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np
import torch

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4")}


def read_idx(path: Path, ndim: int | None = None) -> torch.Tensor:
    """The IDX file's array; ``ndim`` (3 for images, 1 for labels) is checked in the magic number, so a
    wrong or damaged header is named as such rather than as an absurd size."""
    try:
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError; a cut .gz ends in EOFError
        what = "a valid gzip file" if path.suffix == ".gz" else "readable"
        raise ValueError(f"{path} is not {what} ({type(e).__name__}: {e}); replace it with a good copy") from None
    magic = raw[:4].hex() if len(raw) >= 4 else raw.hex()
    if len(raw) < 4 or raw[0] or raw[1] or raw[2] not in _DTYPES or not 1 <= raw[3] <= 4 or (
            ndim is not None and raw[3] != ndim):
        want = f"0x000008{ndim:02x}" if ndim is not None else "0x0000TTNN"
        raise ValueError(f"{path} is not an IDX file of the expected kind (magic number 0x{magic}, expected {want})")
    dims, dtype = raw[3], np.dtype(_DTYPES[raw[2]])
    if len(raw) < 4 + 4 * dims:
        raise ValueError(f"{path} is truncated: its header ends after {len(raw)} bytes")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    offset = 4 + 4 * dims
    expected = offset + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(f"{path} is truncated or corrupt: {len(raw)} bytes, but its header {shape} says {expected}")
    data = np.frombuffer(raw, dtype=dtype, offset=offset).reshape(shape)
    return torch.from_numpy(data.astype(dtype.newbyteorder("="), copy=True))


def write_idx(path: Path, data: np.ndarray) -> None:
    """Write a uint8 array as IDX (gzipped if ``path`` ends in .gz); used to build test fixtures."""
    data = np.ascontiguousarray(data, dtype=np.uint8)
    header = bytes([0, 0, 0x08, data.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in data.shape)
    blob = header + data.tobytes()
    path.write_bytes(gzip.compress(blob, compresslevel=1) if path.suffix == ".gz" else blob)

"""Read IDX files (the MNIST format), gzipped or not, straight into a uint8 tensor.

torchvision ≥ 0.29 reads only the uncompressed files; decoding here lets a read-only folder of ``.gz``
files serve directly, with no extracted copy.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4")}


def read_idx(path: Path) -> torch.Tensor:
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    if len(raw) < 4 or raw[0] or raw[1] or raw[2] not in _DTYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number)")
    ndim, dtype = raw[3], np.dtype(_DTYPES[raw[2]])
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    expected = offset + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(f"{path} is truncated or corrupt: {len(raw)} bytes, expected {expected}")
    data = np.frombuffer(raw, dtype=dtype, offset=offset).reshape(shape)
    return torch.from_numpy(data.astype(dtype.newbyteorder("="), copy=True))


def write_idx(path: Path, data: np.ndarray) -> None:
    """Write a uint8 array as IDX (gzipped if ``path`` ends in .gz); used to build test fixtures."""
    data = np.ascontiguousarray(data, dtype=np.uint8)
    header = bytes([0, 0, 0x08, data.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in data.shape)
    blob = header + data.tobytes()
    path.write_bytes(gzip.compress(blob, compresslevel=1) if path.suffix == ".gz" else blob)

"""Materialise a stream of uniforms through a transform into a tensor of any device and dtype.

On CPU, float32/float64 are filled by the C kernel (compiled at install; split across threads, since
elements are independent). Elsewhere, or without the kernel, the torch path runs in bounded chunks. Both
compute in float64 and cast once, so they agree bit-for-bit.
"""

from __future__ import annotations

import concurrent.futures
import functools
from typing import Protocol

import torch

from lottery.generators.transform import Transform

try:
    from lottery.generators import _fill
except ImportError:  # no compiler at install time: the torch path is used everywhere
    _fill = None

CHUNK = 1 << 20  # elements per torch-path chunk: the int64 temporaries stay near 8 MB each
PARALLEL_MIN = 1 << 18


class Stream(Protocol):
    c_kernel: str

    def uniform(self, offset: int, n: int, device: torch.device | str) -> torch.Tensor: ...

    def c_args(self, offset: int) -> tuple: ...


@functools.lru_cache(maxsize=1)
def _pool() -> concurrent.futures.ThreadPoolExecutor:
    return concurrent.futures.ThreadPoolExecutor(max_workers=max(1, torch.get_num_threads()))


def has_kernel() -> bool:
    return _fill is not None


def can_mask_mul(w: torch.Tensor) -> bool:
    """Whether ``mask_mul`` runs the C kernel on ``w`` (a contiguous float32/64 CPU tensor)."""
    return (_fill is not None and w.device.type == "cpu" and w.is_contiguous()
            and w.dtype in (torch.float32, torch.float64))


def mask_mul(w: torch.Tensor, mask: torch.Tensor, check: bool = True) -> None:
    """``w *= mask`` in place for a bool/uint8 ``mask`` of ``w``'s shape, as a float multiply (bit for bit
    ``w.mul_(mask.float())``) without the float copy; needs ``can_mask_mul(w)`` (``check=False``: the caller
    checked once, e.g. for a whole round)."""
    if check and not (can_mask_mul(w) and mask.is_contiguous() and mask.numel() == w.numel()
                      and mask.element_size() == 1):
        raise ValueError("mask_mul: needs a contiguous float CPU tensor and a contiguous 1-byte mask of its size")
    n, f64, width = w.numel(), int(w.dtype == torch.float64), w.element_size()
    wp, mp = w.data_ptr(), mask.data_ptr()
    parts = min(torch.get_num_threads(), max(1, n // PARALLEL_MIN))
    if parts == 1:
        _fill.mask_mul(wp, mp, n, f64)
        return
    bounds = [n * k // parts for k in range(parts + 1)]
    list(_pool().map(lambda b: _fill.mask_mul(wp + b[0] * width, mp + b[0], b[1] - b[0], f64),
                     zip(bounds, bounds[1:], strict=False)))  # the kernel releases the GIL


def _c_fill(out: torch.Tensor, stream: Stream, transform: Transform, start: int) -> None:
    kernel = getattr(_fill, stream.c_kernel)
    f64 = int(out.dtype == torch.float64)
    targs = transform.args()
    n, base = out.numel(), out.data_ptr()
    width = out.element_size()
    parts = min(torch.get_num_threads(), max(1, n // PARALLEL_MIN))
    bounds = [n * k // parts for k in range(parts + 1)]
    spans = zip(bounds, bounds[1:], strict=False)
    jobs = [(base + lo * width, hi - lo, f64, *targs, stream.c_args(start + lo)) for lo, hi in spans]
    if parts == 1:
        kernel(*jobs[0])
    else:  # the kernel releases the GIL
        list(_pool().map(lambda a: kernel(*a), jobs))


def draw(
    stream: Stream,
    numel: int,
    transform: Transform,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    use_kernel: bool = True,
    start: int = 0,
) -> torch.Tensor:
    """A flat tensor whose element i is transform(u_{start+i}) of the stream, cast once to ``dtype``."""
    device = torch.device(device)
    if not dtype.is_floating_point:
        raise ValueError(f"initial values need a floating dtype, got {dtype}")
    out = torch.empty(numel, dtype=dtype, device=device)
    if numel == 0:
        return out
    if use_kernel and _fill is not None and device.type == "cpu" and dtype in (torch.float32, torch.float64):
        _c_fill(out, stream, transform, start)
        return out
    for lo in range(0, numel, CHUNK):
        n = min(CHUNK, numel - lo)
        out[lo : lo + n] = transform.apply(stream.uniform(start + lo, n, device))
    return out

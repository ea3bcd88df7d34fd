"""What every benchmark prints first: the machine it measured."""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable

import torch


def describe() -> str:
    cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return (
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), CUDA: {cuda}"
    )


def sync(device: str) -> None:
    """Wait for queued GPU work, so wall-clock timings cover it; nothing on CPU."""
    if device == "cuda":
        torch.cuda.synchronize()


def best_time(fn: Callable[[], object], repeats: int = 5, device: str = "cpu") -> float:
    """Minimum wall time of ``repeats`` calls after one warm-up call."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        sync(device)
        t = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - t)
    return best


def parser(doc: str | None, steps: int) -> argparse.ArgumentParser:
    """``--steps``, ``--repeats`` and ``--device`` (every device present by default)."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=steps)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", choices=["cpu", "cuda"], nargs="+",
                   default=["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    return p


def each_device(args: argparse.Namespace, table: Callable[[str, argparse.Namespace], None]) -> None:
    print(describe())
    for device in args.device:
        table(device, args)

"""Generator throughput: regenerating w0 versus drawing fresh numbers.

    python benchmarks/generator.py [--sizes 1000000 25000000] [--threads 1 2]

Values/s of each generator (standard normals as float32), and the ratio to ``torch.randn`` measured in the
same run with the same thread count. numpy's Philox is the counter-based reference point.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import best_time, describe  # noqa: E402

from lottery.generators import STANDARD_NORMAL, HashStream, SobolStream, draw, has_kernel  # noqa: E402


def generators(n: int, device: str) -> dict:
    philox = np.random.Generator(np.random.Philox(0))
    gens = {
        "torch.randn": lambda: torch.randn(n, device=device),
        "numpy Philox normal": lambda: philox.standard_normal(n, dtype=np.float32),
        "hash (ours)": lambda: draw(HashStream(12345), n, STANDARD_NORMAL, device=device),
        "sobol (ours, Owen-scrambled)": lambda: draw(
            SobolStream.scrambled_for(7, 3, n), n, STANDARD_NORMAL, device=device
        ),
        "sobol-paper (ours)": lambda: draw(SobolStream(3), n, STANDARD_NORMAL, device=device, start=1),
    }
    if device == "cpu":
        gens["hash (ours, torch-op path)"] = lambda: draw(HashStream(12345), n, STANDARD_NORMAL, use_kernel=False)
    else:
        del gens["numpy Philox normal"]
    return gens


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 25_000_000])
    p.add_argument("--threads", type=int, nargs="+", default=sorted({1, torch.get_num_threads()}))
    args = p.parse_args()
    print(describe())
    print(f"C kernel built: {has_kernel()}")
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print("\n| device | threads | values | generator | M values/s | × torch.randn |\n|---|---|---|---|---|---|")
    for device in devices:
        for threads in args.threads if device == "cpu" else [torch.get_num_threads()]:
            torch.set_num_threads(threads)
            for n in args.sizes:
                rates = {name: n / best_time(fn, 3, device) for name, fn in generators(n, device).items()}
                base = rates["torch.randn"]
                for name, rate in rates.items():
                    print(f"| {device} | {threads} | {n:,} | {name} | {rate / 1e6:.0f} | {rate / base:.2f} |")
    if torch.cuda.is_available():
        a = draw(HashStream(12345), 1_000_000, STANDARD_NORMAL)
        b = draw(HashStream(12345), 1_000_000, STANDARD_NORMAL, device="cuda").cpu()
        print(f"\nCPU vs CUDA float32 regeneration bit-identical on 1M values: {torch.equal(a, b)}")


if __name__ == "__main__":
    main()

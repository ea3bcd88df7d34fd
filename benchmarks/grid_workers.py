"""Grid throughput on one CPU: cells one after another with every core, vs ``--workers N`` processes of one
thread each. A small grid (2 starts × 2 seeds of LeNet-300-100, 3 rounds of 1 epoch on 55,000 MNIST images)
is run both ways, alternately, each in a fresh folder; wall time of the whole ``python -m lottery.compare``.

Run: ``python3 benchmarks/grid_workers.py`` (data root from ``$LOTTERY_DATA`` or ``../shared/data``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def grid(folder: Path, root: str, threads: int) -> Path:
    path = folder / "grid.yaml"
    path.write_text(yaml.safe_dump({
        "name": "bench", "base": str(REPO / "configs" / "lenet300_mnist.yaml"), "output_dir": str(folder / "out"),
        "overrides": {"data": {"root": root, "download": False},
                      "prune": {"rounds": 3, "epochs_per_round": 1},
                      "train": {"progress_bar": False, "threads": threads}},
        "starts": [{"scheme": "xavier_normal"}, {"scheme": "kaiming_normal"}], "seeds": [1, 2],
    }))
    return path


def timed(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "lottery.compare", *args, "--no-plots"], check=True, cwd=REPO,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = p.parse_args()
    root = os.environ.get("LOTTERY_DATA", str(REPO.parent / "shared" / "data"))
    print(describe())
    times: dict[str, list[float]] = {}
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
            times.setdefault(f"serial, {os.cpu_count()} threads per cell", []).append(
                timed([str(grid(Path(a), root, 0))]))
            times.setdefault(f"--workers {args.workers}, 1 thread each", []).append(
                timed([str(grid(Path(b), root, 1)), "--workers", str(args.workers)]))
    best = {k: min(v) for k, v in times.items()}
    base = next(iter(best.values()))
    print(f"\n4 cells × 3 rounds × 1 epoch (55,000 images), whole command incl. start-up, best of {args.repeats}\n")
    print("| variant | wall s | cells per hour | × serial |\n|---|---|---|---|")
    for name, s in best.items():
        print(f"| {name} | {s:.1f} | {4 * 3600 / s:.0f} | {base / s:.2f} |")


if __name__ == "__main__":
    main()

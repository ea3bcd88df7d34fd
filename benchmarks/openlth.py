"""OpenLTH's own protocol against the same hyper-parameters through ``lottery.train``, side by side: wall time
and peak memory (RSS) of each whole command, fresh processes, median of N with the range.

    OPENLTH_DIR=/path/to/open_lth python3 benchmarks/openlth.py [--levels 3] [--epochs 2] [--repeats 1]

OpenLTH: ``python open_lth.py lottery --default_hparams=mnist_lenet_300_100 --levels=3 --training_steps=2ep``
(SGD 0.1, batch 128, Kaiming normal, global magnitude pruning of 20 % per level, ``fc.weight`` not pruned,
no validation split). Ours: ``configs/lenet300_mnist.yaml`` with exactly those settings as overrides.

Getting OpenLTH (it is not on PyPI): ``git clone https://github.com/facebookresearch/open_lth`` on a machine
with internet, copy it here, and point ``$OPENLTH_DIR`` at it. It keeps its data under
``~/open_lth_datasets/mnist`` (torchvision's MNIST layout, uncompressed IDX files: ``gunzip -k`` the
``*.gz`` of ``$LOTTERY_DATA/MNIST/raw`` into ``~/open_lth_datasets/mnist/MNIST/raw/``) and its runs under
``~/open_lth_data``. Each repeat gives OpenLTH a home of its own (``$HOME`` a fresh temporary folder, its
datasets linked in), because OpenLTH skips work whose run folder exists: a second run in the same home would
time a cached result, not training. Without OpenLTH the script says so and exits 0.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# peak RSS of one child command, measured in a wrapper process of its own so runs do not mask each other
MEASURE = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
           "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(r.returncode)")


def ours(levels: int, epochs: int, out: str) -> list[str]:
    return [sys.executable, "-m", "lottery.train", str(ROOT / "configs/lenet300_mnist.yaml"),
            "init.scheme=kaiming_normal", "init.bias=torch", "optim.name=sgd", "optim.lr=0.1", "optim.momentum=0",
            "data.batch_size=128", "data.val_size=0", "prune.scope=global", "prune.rate=0.2",
            "prune.output_rate=0.0", f"prune.rounds={levels + 1}", f"prune.epochs_per_round={epochs}",
            "prune.monitor=test_loss", "train.progress_bar=false", f"output_dir={out}", "--force"]


def theirs(openlth: Path, levels: int, epochs: int) -> list[str]:
    return [sys.executable, str(openlth / "open_lth.py"), "lottery", "--default_hparams=mnist_lenet_300_100",
            f"--levels={levels}", f"--training_steps={epochs}ep"]


def fresh_home(parent: Path) -> dict[str, str]:
    """An environment whose ``~`` is a new folder holding only a link to OpenLTH's datasets: nothing cached."""
    home = Path(tempfile.mkdtemp(dir=parent, prefix="home-"))
    datasets = Path.home() / "open_lth_datasets"
    if datasets.exists():
        (home / "open_lth_datasets").symlink_to(datasets)
    return {**os.environ, "HOME": str(home)}


def measure(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, float]:
    """(seconds, peak MiB) of ``cmd`` in a fresh process."""
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", MEASURE, *cmd], cwd=cwd, capture_output=True, text=True, env=env)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd[:4])} … failed:\n{proc.stderr[-2000:]}")
    return time.perf_counter() - t, int(proc.stderr.strip().splitlines()[-1]) / 1024


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--levels", type=int, default=3, help="pruning levels after the dense one")
    p.add_argument("--epochs", type=int, default=2, help="training epochs per level")
    p.add_argument("--repeats", type=int, default=1)
    args = p.parse_args()
    openlth = Path(os.environ.get("OPENLTH_DIR", ""))
    if not (openlth / "open_lth.py").is_file():
        print("OpenLTH not found: set $OPENLTH_DIR to a checkout of github.com/facebookresearch/open_lth "
              "(see this script's docstring); nothing measured")
        return 0
    rows: dict[str, list[tuple[float, float]]] = {"OpenLTH": [], "lottery.train": []}
    with tempfile.TemporaryDirectory() as out:
        for _ in range(args.repeats):  # interleaved, so drift in machine load hits both alike
            rows["OpenLTH"].append(measure(theirs(openlth, args.levels, args.epochs), openlth, fresh_home(Path(out))))
            rows["lottery.train"].append(measure(ours(args.levels, args.epochs, out), ROOT))  # --force: retrains
    print(f"LeNet-300-100, {args.levels + 1} levels × {args.epochs} epochs, median of {args.repeats} (range)")
    print("| tool | s | × OpenLTH | peak MiB | × OpenLTH |\n|---|---|---|---|---|")
    base = [statistics.median(v) for v in zip(*rows["OpenLTH"], strict=True)]
    for name, runs in rows.items():
        (t, mib), (ts, mibs) = [statistics.median(v) for v in zip(*runs, strict=True)], list(zip(*runs, strict=True))
        print(f"| {name} | {t:.1f} ({min(ts):.1f}–{max(ts):.1f}) | {t / base[0]:.2f} | {mib:.0f} "
              f"({min(mibs):.0f}–{max(mibs):.0f}) | {mib / base[1]:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

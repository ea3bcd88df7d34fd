"""Start-up cost of the CLIs: ``python -m lottery.train CONFIG --print-config`` (read, override, validate,
print; no training) against bare ``import torch`` and ``import torch, pytorch_lightning``, each a fresh
process, best of N. Also lists which heavy packages the command imported.

    python3 benchmarks/startup.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "import torch": [sys.executable, "-c", "import torch"],
    "import torch, pytorch_lightning": [sys.executable, "-c", "import torch, pytorch_lightning"],
    "lottery.train --print-config": [sys.executable, "-m", "lottery.train", str(ROOT / "configs/lenet300_mnist.yaml"),
                                     "--print-config"],
}


def best(cmd: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    probe = subprocess.run(COMMANDS["lottery.train --print-config"], cwd=ROOT, capture_output=True, text=True,
                           env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"})
    imported = {line.rsplit("|", 1)[-1].strip() for line in probe.stderr.splitlines() if line.startswith("import time")}
    heavy = [m for m in ("torch", "pytorch_lightning", "wandb", "matplotlib", "scipy") if m in imported]
    base = None
    print(f"{'command':<34} {'best of ' + str(args.repeats):>12} {'vs import torch':>16}")
    for name, cmd in COMMANDS.items():
        t = best(cmd, args.repeats)
        base = t if name == "import torch" else base
        ratio = f"{t / base:.2f}×" if base else "–"
        print(f"{name:<34} {t:>11.2f}s {ratio:>16}")
    print(f"--print-config imported: {', '.join(heavy) or 'none of torch, Lightning, wandb, matplotlib, scipy'}")


if __name__ == "__main__":
    main()

"""Network-epochs per second inside the real pipeline: K cells packed as stacked members vs one at a time.

    python benchmarks/pack_epoch.py [--members 4 11 22] [--repeats 2] [--data ../shared/data]
                                    [--model lenet5] [--accelerator gpu]

Each row runs the same cells of ``configs/lenet300_mnist.yaml`` (real MNIST, 55,000 training images, batch
60, Adam, validation + test evaluated every epoch) through ``lottery.pack`` / ``lottery.runner`` with a
Lightning Trainer, 2 rounds of 1 epoch; the timed epoch is round 2's (masks applied after every step), as
measured by a callback from its start to the end of its evaluation. "one at a time" is one cell alone
(all cells cost the same), so K cells one after another take K times its epoch. Packs run with exact
(per-member, bit for bit as alone) and batched products (``members_exact: false``). Interleaved, best kept.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pytorch_lightning as pl
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe  # noqa: E402

from lottery.config import load  # noqa: E402
from lottery.runner import (
    run,  # noqa: E402
    run_pack,  # noqa: E402
)

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "lenet300_mnist.yaml"
SCHEMES = ("xavier_normal", "xavier_uniform", "kaiming_normal", "kaiming_uniform")


class LastEpoch(pl.Callback):
    """Seconds from the start of the last training epoch to the end of its evaluation."""

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.start = time.perf_counter()

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.seconds = time.perf_counter() - self.start


def cells(k: int, data: str, out: str, shared: bool, extra: list[str]) -> list:
    overrides = [f"data.root={data}", *extra, "prune.rounds=2", "prune.epochs_per_round=1",
                 "train.progress_bar=false", "train.checkpoint=false", "prune.sleeping_thresholds=[]",
                 "prune.sleeping_relative=[]", f"output_dir={out}"]
    return [load(CONFIG, [*overrides, f"seed={0 if shared else i}", f"init.scheme={SCHEMES[i % 4]}",
                          f"init.scale={1 + i // 4}"]) for i in range(k)]


def epoch_seconds(k: int, data: str, shared: bool, exact: bool, extra: list[str]) -> float:
    timer = LastEpoch()
    with tempfile.TemporaryDirectory() as out:
        cfgs = cells(k, data, out, shared, extra)
        if k == 1:
            run(cfgs[0], callbacks=[timer])
        else:
            run_pack(cfgs, exact=exact, callbacks=[timer])
    return timer.seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--members", type=int, nargs="+", default=[4, 11, 22])
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--model", default="lenet_300_100", help="any stackable model, e.g. lenet5, conv2")
    p.add_argument("--accelerator", choices=["cpu", "gpu"], default="gpu" if torch.cuda.is_available() else "cpu")
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    args = p.parse_args()
    print(describe())
    extra = [f"model.name={args.model}", f"train.accelerator={args.accelerator}"]
    kinds = (True, False) if args.accelerator == "cpu" else (False,)  # stacked layers are batched on a GPU
    rows = [(1, False, True)] + [(k, s, e) for k in args.members for s in (False, True) for e in kinds]
    times: dict[tuple[int, bool, bool], list[float]] = {}
    for _ in range(args.repeats):
        for row in rows:
            times.setdefault(row, []).append(epoch_seconds(*row[:1], args.data, *row[1:], extra))
    best = {row: min(v) for row, v in times.items()}
    one = best[rows[0]]
    print(f"\n{args.model} on MNIST ({args.accelerator}) through lottery.runner / lottery.pack: one epoch (916 steps "
          f"of 60, then 5,000 validation + 10,000 test images), masks applied; best of {args.repeats}\n")
    print("| K | batch orders | products | s per epoch of all K | network-epochs/s | × one cell at a time |")
    print("|---|---|---|---|---|---|")
    print(f"| 1 (one cell alone) | its own | unstacked | {one:.2f} | {1 / one:.2f} | 1.00 |")
    for k, shared, exact in rows[1:]:
        s = best[(k, shared, exact)]
        print(f"| {k} stacked | {'one shared (same seed)' if shared else 'one per member'} | "
              f"{'exact (per member)' if exact else 'batched'} | {s:.2f} | {k / s:.2f} | {k * one / s:.2f} |")


if __name__ == "__main__":
    warnings.filterwarnings("ignore")
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    logging.getLogger("lottery").setLevel(logging.WARNING)
    main()

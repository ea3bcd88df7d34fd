"""Data throughput: one epoch of LeNet-300-100 on MNIST at batch 60, four ways, measured side by side.

1. plain PyTorch loop over the normalised tensors (randperm + index_select): the reference;
2. plain loop over a per-sample ``DataLoader(TensorDataset)``;
3. torchvision's MNIST with PIL ``ToTensor`` + ``Normalize`` per sample (OpenLTH's way; timed over
   ``--pil-steps`` steps and scaled to the epoch);
4. ``lottery.train``: our Trainer, datamodule, LightningModule and LotteryTicket callback, progress bar on;
   the epoch timed is round 2's (pruned: masks re-applied after every optimizer step), its training steps
   alone and whole (with the evaluation of the validation and test sets, the round's end and the checkpoint).

All use the same model, Adam(fused) 1.2e-3 and one thread count. Run: ``python3 benchmarks/data_throughput.py``
(data root from ``$LOTTERY_DATA`` or ``../shared/data``). Prints a table of ratios against (1).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe  # noqa: E402

from lottery.config import load  # noqa: E402
from lottery.data import TensorDataModule  # noqa: E402
from lottery.data.idx import read_idx  # noqa: E402
from lottery.init import InitSpec, initialize  # noqa: E402
from lottery.models import build  # noqa: E402
from lottery.runner import run  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def net() -> nn.Module:
    model = build("lenet_300_100", (1, 28, 28), 10)
    initialize(model, InitSpec(seed=0))
    return model


def train(batches, steps: int | None = None) -> float:
    # a plain script does not import Lightning, whose import sets PYTORCH_NVML_BASED_CUDA_CHECK=1 (see
    # lottery.runner.skip_nvml_probe): measure the plain loops without that per-step tax
    os.environ.pop("PYTORCH_NVML_BASED_CUDA_CHECK", None)
    model = net()
    opt = torch.optim.Adam(model.parameters(), lr=1.2e-3, fused=True)
    start = time.perf_counter()
    for i, (x, y) in enumerate(batches):
        if steps is not None and i >= steps:
            break
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def tensor_batches(x: torch.Tensor, y: torch.Tensor, seed: int):
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    for i in range(0, len(x), 60):
        idx = perm[i : i + 60]
        yield x.index_select(0, idx), y.index_select(0, idx)


class EpochTimer(pl.Callback):
    """Whole epochs (evaluation, round end, checkpoint included) and their training steps alone."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self.steps: list[float] = []

    def on_train_epoch_start(self, *_: object) -> None:
        self._t = self._last = time.perf_counter()

    def on_train_batch_end(self, *_: object) -> None:
        self._last = time.perf_counter()

    def on_train_epoch_end(self, *_: object) -> None:
        self.seconds.append(time.perf_counter() - self._t)
        self.steps.append(self._last - self._t)


def ours(root: str, out: str, repeat: int) -> tuple[float, float]:
    cfg = load(REPO / "configs" / "lenet300_mnist.yaml", [
        "prune.rounds=2", "prune.epochs_per_round=1", f"data.root={root}", f"output_dir={out}", f"seed={repeat}",
        f"train.threads={torch.get_num_threads()}", "prune.sleeping_thresholds=[]", "prune.sleeping_relative=[]"])
    timer = EpochTimer()
    run(cfg, callbacks=[timer])
    return timer.seconds[1], timer.steps[1]  # round 2: a pruned epoch, masks applied after every step


def pil_dataset(root: str, cache: Path):
    import torchvision
    from torchvision import transforms

    raw = cache / "MNIST" / "raw"  # torchvision 0.29 reads only uncompressed IDX files: write them once
    raw.mkdir(parents=True, exist_ok=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        src = Path(root) / "MNIST" / "raw" / f"{name}.gz"
        data = read_idx(src)
        header = bytes([0, 0, 8, data.dim()]) + b"".join(int(d).to_bytes(4, "big") for d in data.shape)
        (raw / name).write_bytes(header + data.numpy().tobytes())
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    return torchvision.datasets.MNIST(str(cache), train=True, transform=tf, download=False)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--pil-steps", type=int, default=200)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    root = os.environ.get("LOTTERY_DATA", str(REPO.parent / "shared" / "data"))
    print(describe())
    dm = TensorDataModule("mnist", root=root, val_size=5000, download=False)
    dm.prepare()
    x, y = dm.normalized("train"), dm.tensors["train"][1]
    steps = -(-len(x) // 60)
    times: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        pil = pil_dataset(root, Path(tmp) / "tv")
        for r in range(args.repeats):  # interleaved, so drift in machine load hits every row alike
            times.setdefault("plain loop, tensors (randperm + index_select)", []).append(train(tensor_batches(x, y, r)))
            loader = DataLoader(TensorDataset(x, y), batch_size=60, shuffle=True)
            times.setdefault("plain loop, DataLoader(TensorDataset)", []).append(train(loader))
            pil_loader = DataLoader(pil, batch_size=60, shuffle=True)
            t = train(pil_loader, args.pil_steps) * steps / args.pil_steps
            times.setdefault(f"plain loop, torchvision MNIST + PIL transforms (×{steps}/{args.pil_steps} steps)",
                             []).append(t)
            epoch, steps_only = ours(root, str(Path(tmp) / f"runs{r}"), r)
            times.setdefault("lottery.train, training steps (Lightning + LotteryTicket + our datamodule)",
                             []).append(steps_only)
            times.setdefault("lottery.train, whole epoch (+ evaluating 15,000 images, round end, checkpoint)",
                             []).append(epoch)
    best = {k: min(v) for k, v in times.items()}
    base = best["plain loop, tensors (randperm + index_select)"]
    print(f"\nLeNet-300-100, MNIST 55,000 training images, batch 60 ({steps} steps), {args.threads} threads, "
          f"best of {args.repeats}\n")
    print("| variant | s/epoch | × plain loop on tensors |\n|---|---|---|")
    for name, s in best.items():
        print(f"| {name} | {s:.2f} | {s / base:.2f} |")


if __name__ == "__main__":
    main()

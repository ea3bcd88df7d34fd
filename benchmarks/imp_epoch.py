"""IMP epoch time and lottery-state memory: ours versus the tools a user would otherwise pick.

    python benchmarks/imp_epoch.py [--steps 1000] [--repeats 3]

LeNet-300-100 at batch 60 on MNIST-shaped tensors held in memory (the data path is identical for all),
one pruning round already applied so every variant trains a masked network. Rows, measured in one run:
a plain PyTorch loop (masks re-applied after each step), the GEMM-only floor, Lightning without pruning,
Lightning + our LotteryTicket, Lightning + ModelPruning(use_lottery_ticket_hypothesis=True), and our own
pipeline's LightningModule (8 optimizer steps per Lightning call) + LotteryTicket.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelPruning
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import logging
import warnings

from machine import each_device, parser, sync  # noqa: E402

from lottery.callbacks import LotteryTicket
from lottery.classifier import Classifier  # noqa: E402
from lottery.config import PruneConfig  # noqa: E402
from lottery.init import InitSpec, initialize  # noqa: E402
from lottery.pruning import MaskedMultiply  # noqa: E402


def lenet() -> nn.Sequential:
    return nn.Sequential(
        nn.Flatten(), nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100), nn.ReLU(), nn.Linear(100, 10)
    )


class Batches:
    """Batches by randperm + index_select from one tensor: no per-sample Python. ``chunk`` > 1 hands over
    lists of batches, as lottery's datamodule does for ``train.steps_per_call``."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch: int, steps: int, chunk: int = 1) -> None:
        self.x, self.y, self.batch, self.steps, self.chunk = x, y, batch, steps, chunk

    def __len__(self) -> int:
        return -(-self.steps // self.chunk)

    def __iter__(self):
        order = torch.randperm(len(self.x), device=self.x.device)
        batches = (order[i * self.batch : (i + 1) * self.batch] for i in range(self.steps))
        if self.chunk == 1:
            for idx in batches:
                yield self.x.index_select(0, idx), self.y.index_select(0, idx)
            return
        group = []
        for idx in batches:
            group.append((self.x.index_select(0, idx), self.y.index_select(0, idx)))
            if len(group) == self.chunk:
                yield group
                group = []
        if group:
            yield group


class Module(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = lenet()

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, _):
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1.2e-3)


def data(steps: int, device: str = "cpu", chunk: int = 1) -> Batches:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(60 * steps, 784, generator=g), torch.randint(0, 10, (60 * steps,), generator=g)
    return Batches(x.to(device), y.to(device), 60, steps, chunk)


def plain_loop(steps: int, device: str) -> float:
    net = initialize(lenet().to(device), InitSpec())
    masks = [torch.rand_like(p) > 0.2 for p in net.parameters() if p.dim() == 2]
    weights = [p.data for p in net.parameters() if p.dim() == 2]
    apply_masks = MaskedMultiply(weights, masks)  # planned once, as the callback plans it once per round
    opt = torch.optim.Adam(net.parameters(), lr=1.2e-3)
    loader = data(steps, device)
    sync(device)
    t = time.perf_counter()
    for x, y in loader:
        loss = nn.functional.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        apply_masks()
    sync(device)
    return time.perf_counter() - t


def gemm_floor(steps: int, device: str) -> float:
    """The three forward and six backward matrix products of each step, nothing else."""
    shapes = [(784, 300), (300, 100), (100, 10)]
    ws = [torch.randn(a, b, device=device) for a, b in shapes]
    acts = [torch.randn(60, a, device=device) for a, _ in shapes]
    outs = [torch.randn(60, b, device=device) for _, b in shapes]
    sync(device)
    t = time.perf_counter()
    for _ in range(steps):
        for w, a, o in zip(ws, acts, outs, strict=True):
            a @ w
            o @ w.t()
            a.t() @ o
    sync(device)
    return time.perf_counter() - t


class EpochTimer(pl.Callback):
    def __init__(self) -> None:
        self.times: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module):
        sync(pl_module.device.type)
        self.t = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module):
        sync(pl_module.device.type)
        self.times.append(time.perf_counter() - self.t)


def lightning(steps: int, pruning: str | None, device: str) -> tuple[float, dict[str, int]]:
    """Seconds of the second epoch (one pruning round already done) and bytes held for lottery state.

    ``pipeline``: lottery.train's own LightningModule (``Classifier``, the same non-fused Adam as the plain
    loop) taking 8 optimizer steps per Lightning call, as ``train.steps_per_call`` does by default."""
    pipeline = pruning == "pipeline"
    model = Classifier(lenet(), optimizer="adam", lr=1.2e-3, fused=False) if pipeline else Module()
    initialize(model, InitSpec())
    timer = EpochTimer()
    callbacks: list[pl.Callback] = [timer]
    if pruning in ("ours", "pipeline"):
        cb = LotteryTicket(
            PruneConfig(rounds=2, sleeping_thresholds=(), sleeping_relative=(), epochs_per_round=1, output_rate=None)
        )
        callbacks.insert(0, cb)
    elif pruning == "modelpruning":
        cb = ModelPruning(
            "l1_unstructured",
            amount=0.2,
            use_lottery_ticket_hypothesis=True,
            parameters_to_prune=[(m, "weight") for m in model.net if isinstance(m, nn.Linear)],
            apply_pruning=lambda epoch: epoch == 0,
            verbose=0,
        )
        callbacks.insert(0, cb)
    trainer = pl.Trainer(
        accelerator="gpu" if device == "cuda" else "cpu",
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
    )
    trainer.fit(model, data(steps, device, chunk=8 if pipeline else 1))
    return timer.times[-1], state_bytes(model, "ours" if pipeline else pruning, callbacks[0])


def tensor_bytes(tensors) -> int:
    seen, total = set(), 0
    for t in tensors:
        if isinstance(t, torch.Tensor) and t.untyped_storage().data_ptr() not in seen:
            seen.add(t.untyped_storage().data_ptr())
            total += t.untyped_storage().nbytes()
    return total


def state_bytes(model: nn.Module, pruning: str | None, cb) -> dict[str, int]:
    dense = sum(p.numel() * 4 for p in model.parameters())
    if pruning == "ours":
        b = cb.state_bytes()
        return {"lottery state": b["masks"] + b["mask_cache"] + b["theta0"] + b["snapshot"], "dense params": dense}
    if pruning == "modelpruning":
        held = [t for m in model.net for t in list(m.buffers()) + [getattr(m, "weight", None)]]
        copies = [t for m in cb._original_layers.values() for t in m["data"].state_dict().values()]
        masks_and_weights = tensor_bytes(held) - sum(
            p.numel() * 4 for n, p in model.net.named_parameters() if n.endswith("bias")
        )
        return {"lottery state": tensor_bytes(copies) + masks_and_weights, "dense params": dense}
    return {"lottery state": 0, "dense params": dense}


def main() -> None:
    each_device(parser(__doc__, steps=1000).parse_args(), table)


def table(device: str, args: argparse.Namespace) -> None:
    results: dict[str, list[float]] = {}
    memory = {}
    for _ in range(args.repeats):  # interleaved, so drift in machine load hits every row alike
        results.setdefault("GEMM-only floor", []).append(gemm_floor(args.steps, device))
        results.setdefault("plain PyTorch loop (+ masks)", []).append(plain_loop(args.steps, device))
        for name, pruning in [
            ("Lightning, no pruning", None),
            ("Lightning + LotteryTicket (ours)", "ours"),
            ("Lightning + ModelPruning(lottery)", "modelpruning"),
            ("lottery.train's Classifier (8 steps per call) + LotteryTicket", "pipeline"),
        ]:
            seconds, memory[name] = lightning(args.steps, pruning, device)
            results.setdefault(name, []).append(seconds)
    best = {k: min(v) for k, v in results.items()}
    base, light = best["plain PyTorch loop (+ masks)"], best["Lightning, no pruning"]
    print(f"\nLeNet-300-100 on {device}, batch 60, {args.steps} steps per epoch, best of {args.repeats}\n")
    print("| variant | s/epoch | × plain loop | × Lightning without pruning | lottery-state bytes | × dense params |")
    print("|---|---|---|---|---|---|")
    for name, s in best.items():
        mem = memory.get(name)
        mem_cols = f"{mem['lottery state']:,} | {mem['lottery state'] / mem['dense params']:.2f}" if mem else "– | –"
        print(f"| {name} | {s:.2f} | {s / base:.2f} | {s / light:.2f} | {mem_cols} |")


if __name__ == "__main__":
    warnings.filterwarnings("ignore")
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    main()

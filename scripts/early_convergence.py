"""Test accuracy over the first steps of training from every start of a compare grid (no pruning).

    python scripts/early_convergence.py configs/compare_generative.yaml [--steps 0 25 50 100 200 400 917]
        [--out results/generative/early.csv]

"Faster early convergence" is a claim about the first few hundred steps, finer than the grid's per-epoch
records: each cell's start trains with the grid's optimiser and batch size on its seed's batch order, and its
test accuracy is taken at each listed step. One thread, so it runs beside a grid.
"""

from __future__ import annotations

import argparse
import sys

import torch

from lottery.build import build_datamodule, build_network
from lottery.console import grid_table_cli
from lottery.grid import load_grid
from lottery.init import initialize


def curves(config: str, marks: list[int]) -> list[dict]:
    _, cells = load_grid(config)
    out = []
    for cell in cells:
        cfg = cell.config
        dm = build_datamodule(cfg)
        dm.prepare()
        (x, y), (tx, ty) = dm.tensors["train"], dm.tensors["test"]
        test_x = dm.normalize(tx)
        net = initialize(build_network(cfg), cfg.init_spec())
        opt = torch.optim.Adam(net.parameters(), lr=cfg.optim.lr)
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(cfg.seed))
        b = cfg.data.batch_size
        label = cfg.init_spec().label
        for step in range(max(marks) + 1):
            if step in marks:
                with torch.no_grad():
                    acc = float((net(test_x).argmax(1) == ty).double().mean())
                out.append({"start": label, "seed": cfg.seed, "step": step, "test_acc": acc})
            idx = order[(step * b) % len(x):][:b]
            loss = torch.nn.functional.cross_entropy(net(dm.normalize(x[idx])), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        print(f"{label:<24} seed {cfg.seed}: " + ", ".join(f"{r['step']}: {100 * r['test_acc']:.1f} %"
                                                         for r in out if r["start"] == label and r["seed"] == cfg.seed))
    return out


def main(argv: list[str] | None = None) -> int:
    def steps(p: argparse.ArgumentParser) -> None:
        p.add_argument("--steps", nargs="+", type=int, default=[0, 25, 50, 100, 200, 400, 917])

    def table(args: argparse.Namespace) -> list[dict]:
        torch.set_num_threads(1)
        return curves(args.config, sorted(set(args.steps)))

    return grid_table_cli(__doc__, argv, table, steps)


if __name__ == "__main__":
    sys.exit(main())

"""Test accuracy and loss of every start of a compare grid before any training (epoch 0).

    python scripts/starts_at_init.py configs/compare_generative.yaml [--out results/generative/at_init.csv]

Learned starts (vae, ghn) are meant to start closer to a trained network; this measures how much closer,
on the grid's own test split, for each cell's start and seed, and how much the start's networks differ between
seeds (the correlation of the first weight matrix with the next seed's: a generator that ignores its seed
gives 1, independent draws 0). No cell is trained.
"""

from __future__ import annotations

import sys

import torch

from lottery.build import build_datamodule, build_network
from lottery.console import grid_table_cli
from lottery.grid import load_grid
from lottery.init import initialize


def rows(config: str) -> list[dict]:
    _, cells = load_grid(config)
    out: list[dict] = []
    first: dict[str, torch.Tensor] = {}
    for cell in cells:
        cfg = cell.config
        dm = build_datamodule(cfg)
        dm.prepare()
        x, y = dm.normalized("test"), dm.tensors["test"][1]
        net = initialize(build_network(cfg), cfg.init_spec()).eval()
        with torch.no_grad():
            logits = net(x)
        label = cfg.init_spec().label
        w = next(p for p in net.parameters() if p.dim() >= 2).detach().flatten().double()
        corr = float(torch.corrcoef(torch.stack([first[label], w]))[0, 1]) if label in first else float("nan")
        first[label] = w
        out.append({"start": label, "seed": cfg.seed, "test_acc": float((logits.argmax(1) == y).double().mean()),
                    "test_loss": float(torch.nn.functional.cross_entropy(logits, y)),
                    "first_layer_corr_previous_seed": corr})
        shown = "–" if corr != corr else f"{corr:+.3f}"  # NaN: the start's first seed has no previous one
        print(f"{out[-1]['start']:<24} seed {cfg.seed}: test {100 * out[-1]['test_acc']:.2f} %, "
              f"loss {out[-1]['test_loss']:.3f}, first layer's correlation with the previous seed {shown}")
    return out


def main(argv: list[str] | None = None) -> int:
    return grid_table_cli(__doc__, argv, lambda args: rows(args.config))


if __name__ == "__main__":
    sys.exit(main())

"""Network-epochs per second: K LeNet-300-100s stacked into one batched computation vs one at a time.

Each stacked member has its own start, its own batch order (one ``index_select`` gathers all K batches), its
own masks (re-applied after every step) and shares one fused Adam over the stacked tensors; rows for exact
(per-member, bit for bit as alone) and batched products, and for the products alone. Timed over
``--steps`` steps of batch 60 on MNIST-shaped tensors and scaled to a 917-step epoch; interleaved repeats,
best kept. Run: ``python3 benchmarks/stacked.py``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import each_device, parser, sync  # noqa: E402

from lottery.init import InitSpec, initialize  # noqa: E402
from lottery.models import build  # noqa: E402
from lottery.models.stacked import optimizer_params, stack  # noqa: E402

EPOCH_STEPS = 917


def run(k: int, steps: int, x: torch.Tensor, y: torch.Tensor, exact: bool = True) -> float:
    """Seconds for ``steps`` steps of K stacked members (K = 0: one plain, unstacked network), on x's device."""
    base = build("lenet_300_100", (1, 28, 28), 10)
    net = (base if k == 0 else stack(base, k, exact)).to(x.device)
    members = max(k, 1)
    specs = tuple(InitSpec(seed=s) for s in range(members))
    initialize(net, specs[0] if k == 0 else specs)
    weights = [p for n, p in net.named_parameters() if n.endswith("weight")]
    masks = [(torch.rand_like(w) > 0.5).to(w.dtype) for w in weights]  # a pruned round's masks
    opt = torch.optim.Adam(optimizer_params(net), lr=1.2e-3, fused=True)
    g = torch.Generator().manual_seed(0)
    orders = torch.stack([torch.randperm(len(x), generator=g) for _ in range(members)]).to(x.device)
    sync(x.device.type)
    start = time.perf_counter()
    for i in range(steps):
        idx = orders[:, (i * 60) % (len(x) - 60) :][:, :60]
        xb, yb = x.index_select(0, idx.flatten()), y.index_select(0, idx.flatten())
        if k:
            xb, yb = xb.view(k, 60, *x.shape[1:]), yb.view(k, 60)
            loss = nn.functional.cross_entropy(net(xb).flatten(0, 1), yb.flatten(), reduction="none")
            loss = loss.view(k, 60).mean(1).sum()
        else:
            loss = nn.functional.cross_entropy(net(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            torch._foreach_mul_(weights, masks)
    sync(x.device.type)
    return time.perf_counter() - start


def products(k: int, steps: int, exact: bool, device: str = "cpu") -> float:
    """Seconds for only the matrix products of ``steps`` steps of K members (3 forward, 3 weight gradients,
    2 input gradients per member), as ``_StackedAffine`` computes them: what stacking cannot go below."""
    dims = [(784, 300), (300, 100), (100, 10)]
    xs = [torch.randn(k, 60, i, device=device) for i, _ in dims]
    ws = [torch.randn(k, o, i, device=device) for i, o in dims]
    gs = [torch.randn(k, 60, o, device=device) for _, o in dims]
    bs = [torch.randn(k, o, device=device) for _, o in dims]
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        for layer, (x, w, g, b) in enumerate(zip(xs, ws, gs, bs, strict=True)):
            if exact:
                for m in range(k):
                    torch.addmm(b[m], x[m], w[m].t())
                    torch.mm(g[m].t(), x[m])
                    if layer:
                        torch.mm(g[m], w[m])
            else:
                torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2))
                torch.bmm(g.transpose(1, 2), x)
                if layer:
                    torch.bmm(g, w)
    sync(device)
    return time.perf_counter() - start


def main() -> None:
    p = parser(__doc__, steps=200)
    p.add_argument("--members", type=int, nargs="+", default=[1, 4, 11, 22])
    each_device(p.parse_args(), table)


def table(device: str, args: argparse.Namespace) -> None:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(55000, 1, 28, 28, generator=g), torch.randint(0, 10, (55000,), generator=g)
    x, y = x.to(device), y.to(device)
    kinds = (True, False) if device == "cpu" else (False,)  # stacked layers are always batched on a GPU
    times: dict[tuple[str, int, bool], list[float]] = {}
    rows = [("train", 0, True)] + [(kind, k, exact) for k in args.members for kind in ("train", "products")
                                   for exact in kinds]
    for _ in range(args.repeats):
        for kind, k, exact in rows:
            seconds = run(k, args.steps, x, y, exact) if kind == "train" else products(k, args.steps, exact, device)
            times.setdefault((kind, k, exact), []).append(seconds)
    best = {row: min(v) * EPOCH_STEPS / args.steps for row, v in times.items()}
    single = best[rows[0]]
    print(f"\nLeNet-300-100 on {device}, batch 60, {EPOCH_STEPS}-step epochs (timed over {args.steps} steps, best "
          f"of {args.repeats}), masks and fused Adam in every training variant; 'products only' times just the "
          f"matrix products of the same steps: the most stacking could give if all else were free\n")
    print("| K | what | products | s per epoch of all K | network-epochs/s | × one network at a time |")
    print("|---|---|---|---|---|---|")
    print(f"| 1 | plain, unstacked network | nn.Linear | {single:.2f} | {1 / single:.2f} | 1.00 |")
    for kind, k, exact in rows[1:]:
        s, what = best[(kind, k, exact)], "stacked, trained" if kind == "train" else "products only (ceiling)"
        print(f"| {k} | {what} | {'exact (per member)' if exact else 'batched'} | {s:.2f} | {k / s:.2f} | "
              f"{k * single / s:.2f} |")


if __name__ == "__main__":
    main()

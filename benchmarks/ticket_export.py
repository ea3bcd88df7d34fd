"""What a shared ticket costs, and where sparse inference starts to pay, per level of a finished run.

    python benchmarks/ticket_export.py RUN_DIR [--threads 1]

For every level of the run: the ticket's file (its masks, bit-packed: the start is regenerated), the
network as a dense weights-only file and as CSR, and CPU inference time of the sparse (CSR Linear layers)
against the dense network at batch 1 and 256, side by side in one run. Sizes and times depend on the mask
only, so each level's masks are applied to the regenerated w0 (the run keeps trained weights of its last
round alone).
"""

from __future__ import annotations

import argparse
import copy
import io
import sys
import warnings
from pathlib import Path

import torch

warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import best_time, describe  # noqa: E402

from lottery.build import build_network  # noqa: E402
from lottery.config import from_dict  # noqa: E402
from lottery.config.schema import Config  # noqa: E402
from lottery.data import DATASETS  # noqa: E402
from lottery.export import SparseLinear, sparse_state  # noqa: E402
from lottery.pruning.levels import count_levels, level_path, load_levels  # noqa: E402
from lottery.rundir import read_results  # noqa: E402


def size(state: dict[str, torch.Tensor]) -> int:
    buf = io.BytesIO()
    torch.save(state, buf)
    return len(buf.getvalue())


def sparse_copy(net: torch.nn.Module) -> torch.nn.Module:
    out = copy.deepcopy(net)
    for name, module in list(out.named_modules()):
        if isinstance(module, torch.nn.Linear):
            parent = out.get_submodule(name.rpartition(".")[0]) if "." in name else out
            setattr(parent, name.rpartition(".")[2], SparseLinear(module.weight.detach().to_sparse_csr(), module.bias))
    return out.eval()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="a finished run directory")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    run = Path(args.run)
    results = read_results(run, strict=True)
    assert results is not None
    cfg = from_dict(Config, results["config"])
    levels = load_levels(run / "masks", count_levels(run / "masks"))
    print(describe())
    print(f"{cfg.model.name} on {cfg.data.dataset}, {args.threads} thread(s); times: best of 5\n")
    print("| round | % remaining | ticket (KB) | dense (KB) | sparse CSR (KB) | batch 1: sparse / dense (µs) | "
          "× | batch 256: sparse / dense (ms) | × |\n|---|---|---|---|---|---|---|---|---|")
    shape = DATASETS[cfg.data.dataset].shape
    for k, masks in enumerate(levels):
        net = build_network(cfg).eval()
        params = dict(net.named_parameters())
        with torch.no_grad():
            for name, mask in masks.items():
                params[name.removeprefix("model.")].mul_(mask)
        dense_state = {n: t.detach() for n, t in net.state_dict().items()}
        sparse = sparse_copy(net)
        kept = sum(int(m.sum()) for m in masks.values()) / sum(m.numel() for m in masks.values())
        cells = [str(k), f"{100 * kept:.1f}", f"{level_path(run / 'masks', k).stat().st_size / 1024:.0f}",
                 f"{size(dense_state) / 1024:.0f}", f"{size(sparse_state(dense_state)) / 1024:.0f}"]
        for batch, unit in ((1, 1e6), (256, 1e3)):
            x = torch.randn(batch, *shape)
            with torch.no_grad():
                t_sparse = best_time(lambda s=sparse, x=x: s(x), 5, "cpu")
                t_dense = best_time(lambda n=net, x=x: n(x), 5, "cpu")
            digits = 0 if batch == 1 else 2
            cells += [f"{t_sparse * unit:.{digits}f} / {t_dense * unit:.{digits}f}", f"{t_dense / t_sparse:.2f}"]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

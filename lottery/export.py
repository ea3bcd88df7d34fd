"""Tickets as artifacts: because w0 is regenerated, a ticket is its masks plus its start, tens of kilobytes.

    python -m lottery.export RUN_DIR [--round K] [--out DIR]

writes ``DIR/ticket/`` (``ticket.json``: the start, model and round; ``config.yaml``; the bit-packed masks of
levels 0..K, so ``prune.masks_from=DIR/ticket`` retrains rounds 0..K bit for bit) and the trained pruned
network as weights-only files: ``trained-dense.pt`` (dense tensors with zeros) and ``trained-sparse.pt`` (each
pruned weight matrix as CSR parts). A run keeps the trained weights of its last round only (1 MB for
LeNet-300-100; every round's would be 20 MB per run); for an earlier round ``--train`` retrains rounds 0..K
from the ticket, bit for bit the run's own (deterministic), and exports that. ``load_ticket(DIR/ticket)``
rebuilds the network at w0 with the masks applied; ``load_sparse`` gives the trained network with sparse
layers.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from lottery.atomic import write_bytes, write_json, write_text
from lottery.config import ConfigError, from_dict, load
from lottery.config.schema import Config
from lottery.console import run_cli, setup
from lottery.data import DATASETS
from lottery.init import InitSpec, initialize
from lottery.models import build, resolve
from lottery.preflight import check_config
from lottery.pruning.levels import count_levels, level_path, load_levels
from lottery.rundir import ended, read_results, run_dir
from lottery.runner import run
from lottery.safe_load import load_weights_only

FORMAT = 1
WEIGHTS = "weights.pt"  # the run's last round, trained: written by lottery.train at the end of a run


@dataclass
class Ticket:
    network: nn.Module  # at w0, pruned weights zero
    masks: dict[str, torch.Tensor]  # parameter name (of ``network``) → bool mask
    spec: InitSpec
    meta: dict[str, Any]


def _bare(name: str) -> str:
    """Mask names are the LightningModule's (``model.1.weight``); the network's own drop the prefix."""
    return name.removeprefix("model.")


def ticket_network(meta: dict[str, Any], trust_code: bool = False) -> nn.Module:
    """The ticket's network at PyTorch's default init; a model named by import path is built only with
    ``trust_code`` (importing it runs the module's code, and a ticket may come from anyone)."""
    info = DATASETS[meta["dataset"]]
    try:
        return build(meta["model"]["name"], info.shape, info.classes, trust_code=trust_code,
                     **meta["model"].get("kwargs", {}))
    except ValueError as e:
        raise ConfigError(f"ticket: {e}") from None


def check_meta(meta: Any, file: Path) -> dict[str, Any]:
    """``ticket.json`` as a ticket's fields of the right types, else one line naming the file and field."""
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ConfigError(f"ticket: {file} is not a ticket of format {FORMAT}")
    model = meta.get("model")
    checks = {"dataset": meta.get("dataset") in DATASETS,
              "model": isinstance(model, dict) and isinstance(model.get("name"), str)
              and isinstance(model.get("kwargs", {}), dict),
              "init": isinstance(meta.get("init"), dict),
              "round": isinstance(meta.get("round"), int) and not isinstance(meta.get("round"), bool)
              and meta["round"] >= 0}
    for field, ok in checks.items():
        if not ok:
            raise ConfigError(f"ticket: {file}: {field} is not valid ({str(meta.get(field))[:60]!r}); export the run "
                              "again (python -m lottery.export RUN_DIR)")
    return meta


def export(run: Path, round_: int | None, out: Path, train: bool = False, trust_code: bool = False) -> list[Path]:
    results = read_results(run, strict=True)
    if ended(results) != "finished":
        raise ConfigError(f"export: {run} is not a finished run (no finished results.json); export a run that "
                          "lottery.train finished")
    assert results is not None
    levels = count_levels(run / "masks")
    rounds = len(results["rounds"])
    last = min(levels, rounds) - 1
    k = last if round_ is None else round_
    if not 0 <= k <= last:
        raise ConfigError(f"--round: {round_} is not valid; {run} has rounds 0..{last}")
    cfg = from_dict(Config, results["config"])
    if train and not trust_code:
        try:
            resolve(cfg.model.name, trust_code=False)
        except ValueError as e:
            raise ConfigError(f"export: {run}: {e}") from None
    ticket = out / "ticket"
    if ticket.exists():
        shutil.rmtree(ticket)
    for level in range(k + 1):
        target = level_path(ticket / "masks", level)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(level_path(run / "masks", level), target)
    record = results["rounds"][k]
    meta = {"format": FORMAT, "run": results["run"], "round": k, "remaining_pct": record.get("remaining_pct"),
            "test_acc": record.get("test_acc"), "model": {"name": cfg.model.name, "kwargs": cfg.model.kwargs},
            "dataset": cfg.data.dataset, "init": cfg.init_spec().to_dict(),
            "environment": results.get("environment")}  # the masks are the floats of this environment
    write_json(ticket / "ticket.json", meta)
    write_text(ticket / "config.yaml", yaml.safe_dump({**results["config"], "name": f"{cfg.name}-ticket",
                                                       "prune": {**results["config"]["prune"], "rounds": k + 1}},
                                                      sort_keys=False))
    written = [ticket]
    weights = run / WEIGHTS if k == last else None
    if train and (weights is None or not weights.is_file()):
        weights = retrain(ticket, out / "retrained") / WEIGHTS
    if weights is not None and weights.is_file():
        state = load_weights_only(weights)
        dense = {n: t.contiguous() for n, t in state.items()}
        written += [_save(out / "trained-dense.pt", dense), _save(out / "trained-sparse.pt", sparse_state(dense))]
    return written


def retrain(ticket: Path, output_dir: Path) -> Path:
    """Train the ticket's levels 0..K as its run did (``prune.masks_from``: the same masks, w0, batch order
    and schedule, so the same numbers); returns the run directory, whose ``weights.pt`` is round K's."""
    cfg = load(ticket / "config.yaml", [f"prune.masks_from={ticket}", f"output_dir={output_dir}"])
    run(check_config(cfg))
    return run_dir(cfg)


def sparse_state(dense: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Each weight matrix (conv kernels flattened to [out, in·k·k]) as CSR parts, plain tensors, so the file
    stays loadable with ``weights_only``; other tensors (biases) as they are."""
    out = {}
    for name, t in dense.items():
        if t.dim() < 2:
            out[name] = t
            continue
        with warnings.catch_warnings():  # torch calls its CSR support beta; the layout is all this file needs
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            csr = t.reshape(t.shape[0], -1).to_sparse_csr()  # 4 bytes of index per survivor, 4 of value
        out[f"{name}::crow"], out[f"{name}::col"] = csr.crow_indices().int(), csr.col_indices().int()
        out[f"{name}::values"], out[f"{name}::shape"] = csr.values(), torch.tensor(list(t.shape))
    return out


def _save(path: Path, state: dict[str, torch.Tensor]) -> Path:
    buf = io.BytesIO()
    torch.save(state, buf)
    write_bytes(path, buf.getvalue())
    return path


def load_ticket(path: str | Path, trust_code: bool = False) -> Ticket:
    """The exported ticket's network at w0 (regenerated from its start) with its last level's masks applied.
    A ticket may come from anyone: one whose model is an import path (code to run) is refused unless
    ``trust_code=True``, like Hugging Face's ``trust_remote_code``."""
    folder = Path(path)
    try:
        meta = json.loads((folder / "ticket.json").read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"ticket: {folder / 'ticket.json'} cannot be read ({type(e).__name__}); export the run "
                          "again (python -m lottery.export RUN_DIR)") from None
    meta = check_meta(meta, folder / "ticket.json")
    try:
        spec = InitSpec.from_dict(meta["init"])
    except (TypeError, ValueError) as e:
        raise ConfigError(f"ticket: {folder / 'ticket.json'}: init is not valid ({e})") from None
    net = ticket_network(meta, trust_code)
    initialize(net, spec)
    masks = {_bare(n): m for n, m in load_levels(folder / "masks", meta["round"] + 1)[-1].items()}
    params = dict(net.named_parameters())
    with torch.no_grad():
        for name, mask in masks.items():
            if name not in params or params[name].shape != mask.shape:
                raise ConfigError(f"ticket: its mask {name!r} fits no parameter of {meta['model']['name']}")
            params[name].mul_(mask)
    return Ticket(net, masks, spec, meta)


class SparseLinear(nn.Module):
    """``y = x Wᵀ + b`` with W as a CSR matrix: what a pruned Linear layer costs at inference."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        super().__init__()
        self.weight, self.bias = weight, bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = (self.weight @ x.reshape(-1, x.shape[-1]).T).T
        return y if self.bias is None else y + self.bias


def load_sparse(path: str | Path, meta: dict[str, Any], trust_code: bool = False) -> nn.Module:
    """The trained network of ``trained-sparse.pt`` with every Linear layer sparse (CSR); conv layers get
    their dense kernels back (CPU sparse convolutions do not exist in torch)."""
    state = load_weights_only(Path(path))
    net = ticket_network(meta, trust_code)
    dense = {}
    for name in [n for n in state if n.endswith("::crow")]:
        base = name.removesuffix("::crow")
        shape = tuple(state[f"{base}::shape"].tolist())
        with warnings.catch_warnings():  # torch calls its CSR support beta; the layout is all this needs
            warnings.filterwarnings("ignore", message=".*[Ss]parse CSR tensor support is in beta.*")
            warnings.filterwarnings("ignore", message=".*[Ss]parse invariant checks.*")
            dense[base] = torch.sparse_csr_tensor(state[name], state[f"{base}::col"], state[f"{base}::values"],
                                                  (shape[0], int(torch.tensor(shape[1:]).prod())))
    plain = {n: t for n, t in state.items() if "::" not in n}
    net.load_state_dict({**plain, **{n: c.to_dense().reshape(net.get_parameter(n).shape) for n, c in dense.items()}})
    for mod_name, module in list(net.named_modules()):
        if isinstance(module, nn.Linear) and f"{mod_name}.weight" in dense:
            parent = net.get_submodule(mod_name.rpartition(".")[0]) if "." in mod_name else net
            setattr(parent, mod_name.rpartition(".")[2], SparseLinear(dense[f"{mod_name}.weight"], module.bias))
    return net.eval()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lottery.export", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="a finished run directory (runs/<name>-<hash>)")
    p.add_argument("--round", type=int, help="the level to export (default: the last)")
    p.add_argument("--out", help="output folder (default: RUN/export/round-K)")
    p.add_argument("--train", action="store_true",
                   help="for a round before the last (whose trained weights the run does not keep): retrain rounds "
                        "0..K from the ticket, bit for bit the run's, and export the trained network too")
    p.add_argument("--trust-code", action="store_true",
                   help="with --train, allow a run whose model.name is an import path (importing it runs its code)")
    args = p.parse_args(argv)
    setup()

    def body() -> int:
        run = Path(args.run)
        if not run.is_dir():
            raise ConfigError(f"export: {args.run!r} is not a run directory")
        results = read_results(run, strict=True)
        last = len(results["rounds"]) - 1 if results else 0
        k = args.round if args.round is not None else last
        out = Path(args.out) if args.out else run / "export" / f"round-{k:02d}"
        if out.exists() and not out.is_dir():
            raise ConfigError(f"--out: {str(out)!r} is a file; give a folder")
        written = export(run, args.round, out, train=args.train, trust_code=args.trust_code)
        for path in written:
            print(path)
        if len(written) == 1:
            print(f"round {k}'s trained weights are not kept (only the last round's are); pass --train to retrain "
                  f"rounds 0..{k} from the ticket (bit for bit the run's) and export them", file=sys.stderr)
        return 0

    return run_cli(body)


if __name__ == "__main__":
    raise SystemExit(main())

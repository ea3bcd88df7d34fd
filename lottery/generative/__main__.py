"""Learned starts: train a zoo, fit a VAE (local) or hypernetwork (global) generator, use it as init.source.

    python -m lottery.generative zoo configs/lenet300_mnist_wijnja2020.yaml --datasets mnist fashion_mnist --seeds 0 1 2
    python -m lottery.generative fit vae runs/zoo-lenet_300_100-*          # → generators/vae-<hash>.pt
    python -m lottery.generative fit ghn --models lenet_300_100 lenet5 --datasets mnist fashion_mnist
    python -m lottery.train configs/lenet300_mnist.yaml init.source=vae init.generator=generators/vae-<hash>.pt

The file is named by its content hash; an InitSpec naming it regenerates w0 bit for bit in any process.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch

from lottery.atomic import write_bytes
from lottery.config import ConfigError
from lottery.console import run_cli, setup
from lottery.data import DATASETS, TensorDataModule
from lottery.data.sources import DataMissingError
from lottery.generative.fit import fit_ghn, fit_vae
from lottery.generative.zoo import collect, train_zoo
from lottery.init.learned import file_name
from lottery.models import build, resolve

log = logging.getLogger("lottery")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m lottery.generative", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    z = sub.add_parser("zoo", help="train dense runs (one round, checkpoint kept) to fit a VAE on")
    z.add_argument("config", help="train config (model, optimiser, epochs_per_round)")
    z.add_argument("overrides", nargs="*", help="section.field=value overrides")
    z.add_argument("--datasets", nargs="+", default=["mnist"], help="datasets (default: mnist)")
    z.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="seeds (default: 0 1 2)")
    f = sub.add_parser("fit", help="fit a generator and write generators/<kind>-<hash>.pt")
    f.add_argument("kind", choices=["vae", "ghn"])
    f.add_argument("runs", nargs="*", help="vae: finished dense run directories (the zoo)")
    f.add_argument("--models", nargs="+", default=["lenet_300_100"], help="ghn: models to train on")
    f.add_argument("--datasets", nargs="+", default=["mnist"], help="ghn: datasets to train on")
    f.add_argument("--root", help="ghn: data root (default: $LOTTERY_DATA, else the user cache)")
    f.add_argument("--steps", type=int, help="optimiser steps (per layer for vae; default 2000 vae, 10000 ghn)")
    f.add_argument("--slice", type=int, default=16, help="vae: inputs per Linear slice (conv: the kernel)")
    f.add_argument("--latent", type=int, default=4, help="vae: latent dimensions")
    f.add_argument("--seed", type=int, default=0, help="seed of the fit")
    f.add_argument("--out", default="generators", help="output folder (default: generators)")
    f.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    setup()
    return run_cli(lambda: _body(args))


def _positive(name: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise ConfigError(f"--{name}: {value} is not valid; use an integer ≥ 1")


def _body(args: argparse.Namespace) -> int:
    if args.command == "zoo":
        dirs = train_zoo(args.config, args.overrides, args.datasets, args.seeds)
        print("\n".join(str(d) for d in dirs))
        return 0
    for name in ("steps", "slice", "latent"):
        _positive(name, getattr(args, name))
    if not 0 <= args.threads <= 1024:
        raise ConfigError(f"--threads: {args.threads} is not valid; use an integer in 0..1024 (0: all cores)")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out: {args.out!r} is a file; give a folder for the generator file")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.kind == "vae":
        zoo = collect([Path(r) for r in args.runs])
        log.info(f"zoo: {zoo.model}, {len(zoo.runs)} runs on {', '.join(zoo.datasets)}, layers {list(zoo.weights)}")
        data = fit_vae(zoo, slice_size=args.slice, latent=args.latent, steps=args.steps or 2000, seed=args.seed)
    else:
        if args.runs:
            raise ConfigError("fit ghn: takes no run directories (it trains on the task); use --models/--datasets")
        data = _fit_ghn(args)
    path = Path(args.out) / file_name(args.kind, data)
    write_bytes(path, data)
    print(path)
    return 0


def _fit_ghn(args: argparse.Namespace) -> bytes:
    for dataset in args.datasets:  # every name checked before any data is read
        if dataset not in DATASETS:
            raise ConfigError(f"--datasets: {dataset!r} is not valid; choose from {', '.join(sorted(DATASETS))}")
    for model in args.models:
        try:
            resolve(model)
        except ValueError as e:
            raise ConfigError(f"--models: {e}") from None
    tasks = []
    for dataset in args.datasets:
        try:
            dm = TensorDataModule(dataset, root=args.root)  # the runs' split: the validation images stay unseen
            dm.prepare()
        except (DataMissingError, ValueError) as e:
            raise ConfigError(f"--datasets: {e}") from None
        x, y = dm.normalized("train"), dm.tensors["train"][1]
        info = DATASETS[dataset]
        for model in args.models:
            try:
                net = build(model, info.shape, info.classes)
            except ValueError as e:
                raise ConfigError(f"--models: {e}") from None
            tasks.append((f"{model}/{dataset}", net, x, y))
    data, accuracy = fit_ghn(tasks, steps=args.steps or 10000, seed=args.seed)
    for label, acc in accuracy.items():
        log.info(f"ghn: networks generated for {label} classify {100 * acc:.1f} % of 5,000 training images at init")
    return data


if __name__ == "__main__":
    sys.exit(main())

"""Look at one generated weight matrix: ``python -m lottery.inspect --rows 300 --cols 784 --scheme xavier_normal``."""

from __future__ import annotations

import argparse
import math
import re
import sys

import torch
from torch import nn

from lottery.init import SCHEMES, SOURCES, TARGETS, Fans, InitSpec, initial_value, initialize

MAX_ELEMENTS = 1 << 28
# every mode bounded by the weights it generates, so no argument keeps the command busy for minutes
MAX_GENERATED = 1 << 30  # regenerated weights in all (--test-repro N × rows × cols, --compare-schemes × schemes)
MAX_ORTHOGONAL = 1 << 22  # orthogonal draws need a QR (and its summary an SVD): cubic in the side
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def matrix(spec: InitSpec, rows: int, cols: int, name: str) -> torch.Tensor:
    holder = nn.Module()
    holder.register_parameter(name, nn.Parameter(torch.empty(rows, cols)))
    initialize(holder, spec)
    return getattr(holder, name).detach()


def summary(spec: InitSpec, w: torch.Tensor) -> str:
    w64 = w.double()
    line = f"{spec.label:<34} mean {float(w64.mean()):+.5f}  std {float(w64.std()):.5f}"
    line += f"  min {float(w64.min()):+.4f}  max {float(w64.max()):+.4f}"
    if spec.scheme in TARGETS:
        kind, width = TARGETS[spec.scheme](Fans.of(tuple(w.shape)), spec.scale)
        got = float(w64.std()) if kind == "normal" else float(w64.abs().max())
        line += f"  target {'std' if kind == 'normal' else 'bound'} {width:.5f} ({100 * (got / width - 1):+.2f} %)"
    if spec.scheme == "orthogonal":
        s = torch.linalg.svdvals(w64)
        line += f"  condition number {float(s.max() / s.min()):.6f}"
    return line


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lottery.inspect", description=__doc__)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rows", type=int, default=300, help=f"fan_out (torch weight rows); rows × cols ≤ {MAX_ELEMENTS:,}")
    p.add_argument("--cols", type=int, default=784, help="fan_in (torch weight columns)")
    p.add_argument("--scheme", default="xavier_normal", help=f"one of {', '.join(sorted(SCHEMES))}")
    p.add_argument("--source", default="hash", help=f"one of {', '.join(SOURCES)}")
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--name", default="weight", help="parameter name (part of the hash stream)")
    p.add_argument("--corner", type=int, default=4, help="rows/cols of the corner to print")
    p.add_argument("--compare-schemes", action="store_true", help="one summary line per scheme")
    p.add_argument(
        "--test-repro",
        type=int,
        nargs="?",
        const=3,
        default=0,
        metavar="N",
        help="regenerate N times and report the max difference (must be 0)",
    )
    args = p.parse_args(argv)
    try:
        spec = InitSpec(seed=args.seed, scheme=args.scheme, source=args.source, scale=args.scale)
        if args.rows < 1 or args.cols < 1:
            raise ValueError(f"--rows/--cols: {args.rows}×{args.cols} is not valid; both must be ≥ 1")
        if args.rows * args.cols > MAX_ELEMENTS:
            raise ValueError(f"--rows/--cols: {args.rows}×{args.cols} is not valid; at most {MAX_ELEMENTS:,} "
                             "weights (1 GiB of float32), so a typo cannot exhaust memory")
        if args.rows * args.cols < 2:
            raise ValueError(f"--rows/--cols: {args.rows}×{args.cols} is not valid; a standard deviation needs at "
                             "least 2 weights")
        if not NAME.fullmatch(args.name):
            raise ValueError(f"--name: {args.name!r} is not valid; a parameter name is a Python identifier such as "
                             "'weight' (no dots: a dotted name is a module path, not one tensor)")
        if (spec.scheme == "orthogonal" or args.compare_schemes) and args.rows * args.cols > MAX_ORTHOGONAL:
            raise ValueError(f"--rows/--cols: {args.rows}×{args.cols} is too large for the orthogonal scheme "
                             f"(a QR and an SVD of the matrix); at most {MAX_ORTHOGONAL:,} weights")
        copies = 1 + args.test_repro + (len(SCHEMES) if args.compare_schemes else 0)
        if copies * args.rows * args.cols > MAX_GENERATED:
            raise ValueError(f"--test-repro: {args.test_repro} regenerations of {args.rows}×{args.cols} is not valid; "
                             f"at most {MAX_GENERATED:,} weights generated in all (--test-repro "
                             f"{max(1, MAX_GENERATED // (args.rows * args.cols) - 1)} at this size)")
        if args.corner < 0:
            raise ValueError(f"--corner: {args.corner} is not valid; use an integer ≥ 0")
        if args.test_repro < 0:
            raise ValueError(f"--test-repro: {args.test_repro} is not valid; use an integer ≥ 1")
        if args.test_repro and not spec.regenerable:
            raise ValueError(f"--test-repro: the {spec.source!r} source is not regenerable (torch's own PRNG); "
                             f"use one of {', '.join(s for s in SOURCES if s != 'torch')}")
        w = matrix(spec, args.rows, args.cols, args.name)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    torch.set_printoptions(precision=5, sci_mode=False)
    print(f"{args.rows}×{args.cols} '{args.name}' seed {args.seed}: corner")
    print(w[: args.corner, : args.corner])
    if args.compare_schemes:
        for name in sorted(SCHEMES):
            other = spec.replace(scheme=name)
            print(summary(other, matrix(other, args.rows, args.cols, args.name)))
    else:
        print(summary(spec, w))
    if args.test_repro:
        holder = nn.Module()
        holder.register_parameter(args.name, nn.Parameter(w.clone()))
        diffs = [float((initial_value(holder, args.name, spec) - w).abs().max()) for _ in range(args.test_repro)]
        print(f"regenerated {args.test_repro}×: max |difference| = {max(diffs):g}")
        if max(diffs) != 0 or math.isnan(max(diffs)):
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Retrain one committed grid cell from scratch and compare every number with its committed record.

    python scripts/retrain_cell.py configs/compare_wijnja2020.yaml --cell 3 --out /tmp/retrain

A control cell retrains its ticket first (its masks are not committed), and that ticket is compared too.
Cells that a grid trained as stacked members are retrained alone, so a match also shows that stacked
members equal their cells alone. Where this environment is the record's (``python -m lottery.environment``),
every round row (and the evaluation curve) must equal the committed one bit for bit; elsewhere the script says
which fields of the environment differ and checks the structure exactly and each round's accuracies within
the seed spread of the committed grid (``lottery.reproduce``). Exit 0 when the retrain reproduces the record,
1 when it does not (the differences printed), 2 for a bad argument.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from lottery.config import ConfigError
from lottery.console import run_cli, setup
from lottery.grid import Cell, load_grid, record_path
from lottery.reproduce import compare
from lottery.results import identity
from lottery.rundir import read_results
from lottery.runner import run


def peers(grid: Any, cells: list[Cell], cell: Cell) -> list[dict[str, Any]]:
    """The committed records of the cell's start and control under its other seeds: the seed spread."""
    same = {k: v for k, v in identity(cell.config).items() if k not in ("run", "seed")}
    out = []
    for other in cells:
        if other.index != cell.index and {k: v for k, v in identity(other.config).items()
                                          if k not in ("run", "seed")} == same:
            rec = read_results(record_path(grid, other).parent)
            if rec is not None and rec.get("finished"):
                out.append(rec)
    return out


def retrain(cell: Cell, grid: Any, cells: list[Cell]) -> list[str]:
    committed = read_results(record_path(grid, cell).parent, strict=True)
    if committed is None:
        raise ConfigError(f"--cell {cell.index}: {cell.label} has no committed record in {grid.results_dir}")
    train = committed["config"]["train"]  # float sums depend on the thread count: train as the record did
    cell.config.train.threads, cell.config.train.steps_per_call = train["threads"], train["steps_per_call"]
    new = run(cell.config)
    mode, envs, found = compare(committed, new, peers(grid, cells, cell))
    if envs:
        print(f"cell {cell.index}: the environment differs from the record's, so it is compared {mode} instead "
              "of bit for bit:\n  " + "\n  ".join(envs))
    state = f"{mode}: {'identical' if mode == 'bit for bit' else 'consistent'}" if not found else \
        f"{mode}: {len(found)} differences"
    print(f"cell {cell.index} · {cell.label} · {len(new['rounds'])} rounds · {state} to {record_path(grid, cell)}")
    return found


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", help="grid YAML with a results_dir of committed cells")
    p.add_argument("--cell", type=int, required=True, help="the cell's index (python -m lottery.compare --list)")
    p.add_argument("--out", required=True, help="an empty folder for the retrained runs")
    args = p.parse_args(argv)
    setup()

    def body() -> int:
        grid, cells = load_grid(args.config, [f"output_dir={args.out}"])
        if not 0 <= args.cell < len(cells):
            raise ConfigError(f"--cell: {args.cell} is not valid; the grid has cells 0..{len(cells) - 1}")
        cell = cells[args.cell]
        chain = ([cells[cell.source]] if cell.source is not None else []) + [cell]
        found = [d for c in chain for d in retrain(c, grid, cells)]
        for line in found[:20]:
            print(line)
        return 1 if found else 0

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())

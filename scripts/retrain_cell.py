"""Retrain one committed grid cell from scratch and compare every number with its committed record.

    python scripts/retrain_cell.py configs/compare_wijnja2020.yaml --cell 3 --out /tmp/retrain

A control cell retrains its ticket first (its masks are not committed), and that ticket is compared too.
Cells that a grid trained as stacked members are retrained alone, so a match also shows that stacked
members equal their cells alone. Exit 0 when every round row (and the evaluation curve) equals the committed
one bit for bit, 1 at the first difference (printed), 2 for a bad argument.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from lottery.config import ConfigError
from lottery.console import run_cli, setup
from lottery.grid import Cell, load_grid, record_path
from lottery.rundir import read_results
from lottery.runner import run


def differences(committed: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What differs between two records, row by row and key by key (timings excluded)."""
    out = []
    for key in ("rounds", "curve"):
        old_rows, new_rows = committed.get(key) or [], new.get(key) or []
        if len(old_rows) != len(new_rows):
            out.append(f"{key}: {len(old_rows)} committed rows, {len(new_rows)} retrained")
        for i, (a, b) in enumerate(zip(old_rows, new_rows, strict=False)):
            for k in sorted(set(a) | set(b)):
                if a.get(k) != b.get(k):
                    out.append(f"{key}[{i}].{k}: committed {a.get(k)!r}, retrained {b.get(k)!r}")
    return out


def retrain(cell: Cell, grid: Any) -> list[str]:
    committed = read_results(record_path(grid, cell).parent, strict=True)
    if committed is None:
        raise ConfigError(f"--cell {cell.index}: {cell.label} has no committed record in {grid.results_dir}")
    train = committed["config"]["train"]  # float sums depend on the thread count: train as the record did
    cell.config.train.threads, cell.config.train.steps_per_call = train["threads"], train["steps_per_call"]
    new = run(cell.config)
    found = differences(committed, new)
    state = "identical" if not found else f"{len(found)} differences"
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
        found = [d for c in chain for d in retrain(c, grid)]
        for line in found[:20]:
            print(line)
        return 1 if found else 0

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())

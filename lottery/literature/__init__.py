"""Our numbers beside the published ones: each paper's claims, checked against a grid's results table.

    python -m lottery.literature frankle2019 results/frankle2019/results.csv
    python -m lottery.literature wijnja2020 results/wijnja2020/results.csv
    python -m lottery.literature sobol results/sobol_quick/results.csv
    python -m lottery.literature generative results/generative/results.csv
    python -m lottery.literature starts results/lenet5_fashion_mnist/results.csv \
        --grid configs/compare_lenet5_fashion.yaml
    python -m lottery.literature frankle2021 results/frankle2021/results.csv
    python -m lottery.literature frankle2020 results/frankle2020/stability.csv

writes ``README.md`` beside the table (``--out`` elsewhere): what was run, a table per sparsity level, and
every published claim with our measurement, its statistics and a verdict that follows the rules of
``lottery.literature.verdicts``, so the text is regenerated from the data, never edited by hand. Adding a
page is one module with one ``@paper`` function, imported here. The published values are those of each
paper (the pages cite them).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lottery.atomic import write_text
from lottery.config import ConfigError, read_yaml
from lottery.console import run_cli
from lottery.grid import load_grid
from lottery.literature import (  # noqa: F401  (registers the pages)
    frankle2019,
    frankle2020,
    frankle2021,
    generative,
    sobol,
    starts,
    wijnja2020,
)
from lottery.literature.provenance import environment_section
from lottery.literature.tables import NEEDS, PAPERS, is_stability, nearest_round
from lottery.results import NEEDED, read_table
from lottery.stability_grid import measurements

__all__ = ["PAPERS", "main", "nearest_round"]


CHECKOUT = Path(__file__).resolve().parents[2]


def grid_of(folder: Path, pattern: str = "compare*.yaml") -> str | None:
    """The grid (or stability study) config (``configs/<pattern>`` here, else in the checkout) whose table is
    written to ``folder`` (its ``results_dir``, else its ``output_dir``): the page must describe the grid that
    made the table, not the page's usual one. None: no grid is known for it (the page then leaves out what only
    a grid says)."""
    for root in (Path("configs"), CHECKOUT / "configs"):
        for path in sorted(root.glob(pattern)):
            try:
                data = read_yaml(path)
            except ConfigError:
                continue
            where = data.get("results_dir") or data.get("output_dir") or f"runs/{data.get('name', path.stem)}"
            if (root.parent / str(where)).resolve() == folder.resolve() or Path(str(where)).resolve() == \
                    folder.resolve():
                return str(path)
    return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lottery.literature", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paper", help=f"one of {', '.join(PAPERS)}")
    p.add_argument("results", help="results.csv of the grid")
    p.add_argument("--out", help="the README to write (default: README.md beside the table)")
    p.add_argument("--grid", help="the grid (or stability study) config the table comes from (its cell count is "
                                  "the page's total; default: the one in configs/ whose table lives in the "
                                  "table's folder)")
    args = p.parse_args(argv)

    def body() -> int:
        if args.paper not in PAPERS:
            raise ConfigError(f"paper: {args.paper!r} is not valid; choose one of {', '.join(PAPERS)}")
        if args.grid and not Path(args.grid).is_file():
            raise ConfigError(f"--grid: {args.grid!r} does not exist; give the grid config the table comes from")
        out = Path(args.out) if args.out else Path(args.results).parent / "README.md"
        if out.is_dir():
            raise ConfigError(f"--out: {str(out)!r} is a folder; give the README file to write")
        table = read_table(args.results, NEEDS.get(args.paper, NEEDED))
        table.attrs["folder"] = str(Path(args.results).parent)  # for files beside the table (at_init.csv)
        if is_stability(table):  # its config counts the measurements
            study = args.grid or grid_of(Path(args.results).parent, "stability*.yaml")
            if study is not None:
                try:
                    table.attrs.update(config=study, measurements=measurements(study))
                except ConfigError as e:
                    raise ConfigError(f"--grid: {study} is not a stability study ({e}); give the "
                                      "lottery.stability_grid config the table comes from") from None
        elif (grid := args.grid or grid_of(Path(args.results).parent)) is not None:
            cells = load_grid(grid)[1]
            table.attrs["grid_cells"] = len(cells)
            table.attrs["config"] = grid
            prune = cells[0].config.prune  # every cell of a page's grid trains rounds of one length
            table.attrs["round_length"] = (("steps", prune.steps_per_round) if prune.steps_per_round else
                                           ("epochs", prune.epochs_per_round))
        write_text(out, PAPERS[args.paper](table) + environment_section(table))
        print(f"wrote {out}")
        return 0

    return run_cli(body)

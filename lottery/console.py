"""What the command-line tools print: log lines above Lightning's progress bars, no library noise."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

from lottery.atomic import write_csv
from lottery.config.typed import ConfigError
from lottery.errors import EXIT_BAD_INPUT, EXIT_DIVERGED, EXIT_SIGINT, EXIT_SIGPIPE, Diverged, Interrupted


class TqdmHandler(logging.Handler):
    """Log lines printed above Lightning's progress bars (tqdm.write) instead of through them."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # noqa: BLE001  (logging must never raise)
            self.handleError(record)


def setup() -> None:
    handler = TqdmHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    # Lightning 2.6 + torch 2.14 warn about their own pytree internals on every fit; not the user's business
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    # under DDP every rank evaluates the whole validation and test sets, so there is nothing to synchronise;
    # and Lightning's own all_gather calls a torch function torch has deprecated
    warnings.filterwarnings("ignore", message=r".*sync_dist=True.*")
    warnings.filterwarnings("ignore", message=r".*all_gather is deprecated.*")
    # the run directory is ours: its checkpoints/ holds the thread stamp (and a resume's checkpoint) on purpose
    warnings.filterwarnings("ignore", message=r".*Checkpoint directory .* exists and is not empty.*")
    warnings.filterwarnings("ignore", message=r".*smaller than the logging interval.*")
    # on a SLURM login node every local run would be told to use srun; the SLURM launcher and README say how
    warnings.filterwarnings("ignore", message=r".*The `srun` command is available on your system.*")
    # Lightning's start-up lines (GPU/TPU available, a logging Tip, "`Trainer.fit` stopped") say nothing a user
    # of these commands needs; the round lines and the run's own summary do
    logging.getLogger("pytorch_lightning.utilities.rank_zero").setLevel(logging.WARNING)
    logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)


def run_cli(body: Callable[[], int | None]) -> int:
    """Run a command's body: a ``ConfigError`` becomes one line on stderr and exit status 2, a run that went
    non-finite (``Diverged``) one line and exit status 3, a signal (``Interrupted``, Ctrl+C) one line and
    130 (SIGINT) or 143 (SIGTERM); no traceback."""
    try:
        return body() or 0
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Diverged as e:
        print(f"diverged: {e}", file=sys.stderr)
        return EXIT_DIVERGED
    except Interrupted as e:
        print(f"interrupted: {e}", file=sys.stderr)
        return e.code
    except KeyboardInterrupt:
        print("interrupted: SIGINT; nothing unfinished is marked finished: rerun the same command to go on",
              file=sys.stderr)
        return EXIT_SIGINT
    except BrokenPipeError:  # the reader closed the pipe: no traceback, and none at exit when Python flushes
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_SIGPIPE


def table_arguments(prog: str, doc: str | None, argv: list[str] | None) -> tuple[Path, Path]:
    """The ``RESULTS [--out DIR]`` arguments of the commands that read a grid's table."""
    p = argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", help="results.csv of a grid (python -m lottery.compare writes it)")
    p.add_argument("--out", help="output folder (default: beside the table)")
    args = p.parse_args(argv)
    results = Path(args.results)
    out = Path(args.out) if args.out else results.parent
    if out.exists() and not out.is_dir():
        print(f"error: --out: {str(out)!r} is a file; give a folder", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)
    return results, out


def grid_table_cli(doc: str | None, argv: list[str] | None, table: Callable[[argparse.Namespace], list[dict]],
                   extra: Callable[[argparse.ArgumentParser], None] | None = None) -> int:
    """A ``CONFIG [--out CSV]`` command that computes rows from a compare grid's cells and writes them."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", help="a compare grid config")
    p.add_argument("--out", help="CSV to write (default: print only)")
    if extra is not None:
        extra(p)
    args = p.parse_args(argv)
    setup()

    def body() -> int:
        rows = table(args)
        if args.out:
            write_csv(Path(args.out), rows)
        return 0

    return run_cli(body)

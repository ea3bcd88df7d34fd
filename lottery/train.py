"""Run a lottery-ticket (IMP) experiment from a YAML config.

    python -m lottery.train configs/lenet300_mnist.yaml prune.rounds=3 prune.epochs_per_round=1

Overrides are dotted ``section.field=value`` pairs (values in YAML syntax). The run directory is
``<output_dir>/<name>-<hash>``; a finished run is not redone, an interrupted one resumes from its checkpoint.
"""

from __future__ import annotations

import argparse
import sys

from lottery.config import Config, describe, load, to_yaml
from lottery.console import run_cli, setup
from lottery.preflight import check_config


def reference() -> str:
    rows = describe(Config)
    width = max(len(k) for k, *_ in rows)
    return "\n".join(f"  {k:<{width}}  {h} [{t}; default {d}]" for k, t, d, h in rows)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m lottery.train", description=__doc__, epilog="config keys:\n" + reference(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", help="YAML config file (see configs/)")
    p.add_argument("overrides", nargs="*", help="section.field=value overrides")
    p.add_argument("--print-config", action="store_true",
                   help="print the resolved config, its run directory and this environment; exit")
    p.add_argument("--force", action="store_true", help="run again even if the run directory holds a finished run")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_intermixed_args(argv)  # overrides may come after the options
    setup()
    return run_cli(lambda: _body(args))


def _body(args: argparse.Namespace) -> int:
    cfg = check_config(load(args.config, args.overrides))
    if args.print_config:
        from lottery.environment import describe, environment  # torch (≈ 1 s) only when it is asked for

        print(f"# run directory: {cfg.output_dir}/{cfg.run_name}\n# environment here: {describe(environment())} "
              f"(python -m lottery.environment for all of it)\n{to_yaml(cfg)}", end="")
        return 0
    from lottery.runner import run  # Lightning loads only when there is something to train (seconds)

    run(cfg, force=args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())

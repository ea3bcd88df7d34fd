"""Rewrite every committed results page with the command it names, after a change to the verdict rules or the
pages' wording (run from the repository root; each page's command reads tables under ``results/``):

    python scripts/regenerate_pages.py             # every results/*/README.md
    python scripts/regenerate_pages.py --check     # exit 1 naming the pages that would change, writing nothing

A page says how it was written ("this page: `python -m lottery.literature …`"); a test regenerates each and
compares bytes, so a rules change that is not followed by this script fails CI.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import tempfile
from pathlib import Path

from lottery.atomic import write_text
from lottery.literature import main as write_page

PAGE_COMMAND = re.compile(r"this page: `python -m lottery\.literature ([^`]+)`")


def page_arguments(readme: Path) -> list[str] | None:
    """The ``lottery.literature`` arguments a page names, or None if it names none."""
    found = PAGE_COMMAND.search(readme.read_text())
    return found.group(1).split() if found else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python scripts/regenerate_pages.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default="results", help="the folder whose */README.md pages are rewritten")
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 if a page would change")
    args = p.parse_args(argv)
    stale, failed = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for readme in sorted(Path(args.results).glob("*/README.md")):
            page = page_arguments(readme)
            if page is None:
                print(f"{readme}: names no `python -m lottery.literature` command; left as it is")
                continue
            fresh = Path(tmp) / f"{readme.parent.name}.md"
            with contextlib.redirect_stdout(io.StringIO()):  # its "wrote <temporary file>" is no news
                code = write_page([*page, "--out", str(fresh)])
            if code != 0:
                failed.append(readme)
                continue
            if fresh.read_text() != readme.read_text():
                stale.append(readme)
                if not args.check:
                    write_text(readme, fresh.read_text())
    for readme in stale:
        print(f"{readme}: {'would change' if args.check else 'rewritten'}")
    for readme in failed:
        print(f"{readme}: its command failed (see above); left as it is")
    return 2 if failed else 1 if stale and args.check else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Lightning's own command line for the callback, with the errors ``python -m lottery.train`` gives.

    LightningCLI(MyModule, MyData, parser_class=lottery.cli.Parser)

``LightningCLI`` already configures ``LotteryTicket`` from the command line (``--trainer.callbacks+=
lottery.LotteryTicket --trainer.callbacks.prune.rate=0.5``), typed and checked while parsing. A misspelled
field, though, comes back from jsonargparse as some 70 lines of union-type diagnostics without the valid names.
This parser says it in one line, as the lottery CLI does (``prune.rewnd is not a field of prune; did you mean
'rewind'?``), and exits 2; every other error is jsonargparse's own.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import sys
from typing import Any, NoReturn

from pytorch_lightning.cli import LightningArgumentParser

from lottery.config import PruneConfig
from lottery.init import InitSpec

SECTIONS: dict[str, Any] = {"prune": PruneConfig, "init": InitSpec}  # LotteryTicket's dataclass arguments
_GIVEN = re.compile(r"NestedArg\(key='([\w.]+)', val=")


def misspelled_field(message: str) -> str | None:
    """One line naming the first unknown field of a callback section in a jsonargparse error, with the closest
    valid name and all of them; None when the error is about something else."""
    for key in _GIVEN.findall(message):
        path, _, name = key.rpartition(".")
        section = path.rsplit(".", 1)[-1]
        cls = SECTIONS.get(section)
        if cls is None:
            continue
        valid = sorted(f.name for f in dataclasses.fields(cls))
        if name in valid:
            continue
        close = difflib.get_close_matches(name, valid, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return f"{section}.{name} is not a field of {section}; {hint}valid fields: {', '.join(valid)}"
    return None


class Parser(LightningArgumentParser):
    """``LightningArgumentParser`` whose error for a misspelled callback field is one line (exit 2)."""

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        line = misspelled_field(message)
        if line is not None and self.exit_on_error:
            sys.stderr.write(f"error: {line}\n")
            raise SystemExit(2)
        super().error(message, ex)

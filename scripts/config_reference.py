"""Print the config reference (every key, type, default and help text) and the callback's own arguments as
Markdown tables, both read from their one definition (``lottery.config`` and ``LotteryTicket``'s signature and
docstring).

The README's "Config reference" section and its table of the callback's arguments are this script's output;
a test keeps them in step.
"""

from __future__ import annotations

import inspect
import re

from lottery.callbacks import LotteryTicket
from lottery.config import Config, describe


def table() -> str:
    lines = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for key, kind, default, help_text in describe(Config):
        lines.append(f"| `{key}` | {kind.replace('|', '/')} | `{default}` | {help_text.replace('|', '/')} |")
    return "\n".join(lines)


def _argument_help(doc: str) -> dict[str, str]:
    """``name: text`` entries of a Google-style ``Args:`` section, continuation lines joined."""
    args, name = {}, None
    for line in doc.split("Args:", 1)[1].splitlines():
        match = re.match(r"^\s{8}(\w+): (.*)$", line)
        if match:
            name, args[match.group(1)] = match.group(1), match.group(2)
        elif name and line.startswith(" " * 12):
            args[name] += " " + line.strip()
    return args


def callback_table() -> str:
    helps = _argument_help(LotteryTicket.__doc__ or "")
    lines = ["| argument | default | meaning |", "|---|---|---|"]
    for name, param in inspect.signature(LotteryTicket).parameters.items():
        text = helps.get(name, "").replace("|", "/").replace("``", "`")
        lines.append(f"| `{name}` | `{param.default!r}` | {text} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(callback_table(), table(), sep="\n\n")

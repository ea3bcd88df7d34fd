"""Print the config reference (every key, type, default and help text) as a Markdown table.

The README's "Config reference" section is this script's output; a test keeps the two in step.
"""

from __future__ import annotations

from lottery.config import Config, describe


def table() -> str:
    lines = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for key, kind, default, help_text in describe(Config):
        lines.append(f"| `{key}` | {kind.replace('|', '/')} | `{default}` | {help_text.replace('|', '/')} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())

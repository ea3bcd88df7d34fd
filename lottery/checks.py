"""The range and choice checks that the config, the callback, ``InitSpec`` and the datamodule share: one
wording, one place. Each raises ``ValueError`` that names the field, the bad value and what would do (the
config layer turns it into ``ConfigError``). Torch-free, so checking a config stays cheap."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

MAX_SEED = (1 << 63) - 1  # seeds feed the 64-bit hash with one bit to spare


def invalid(field: str, value: object, expected: str) -> ValueError:
    return ValueError(f"{field}: {value!r} is not valid; {expected}")


def not_a(path: Path, kind: str) -> str:
    """Why ``path`` is not a ``kind`` ("file" or "folder"), in words: it does not exist, it is a link that
    does not resolve, or what it is instead (a symbolic link to /dev/zero exists: it is a device)."""
    if path.is_symlink() and not path.exists():
        return f"is a symbolic link to {os.readlink(path)!r}, which does not resolve"
    if not path.exists():
        return "does not exist"
    what = "a folder" if path.is_dir() else "a regular file" if path.is_file() else "a device or other special file"
    return f"is {what}, not a {kind}"


def choice(field: str, value: object, choices: Iterable[object]) -> None:
    options = list(choices)
    if value not in options:
        raise invalid(field, value, f"choose one of {', '.join(map(str, options))}")


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def fraction(field: str, value: object, closed_low: bool = True) -> None:
    """A fraction in [0, 1) (or (0, 1)); None passes (an optional field)."""
    if value is None:
        return
    if not _number(value) or not ((0 <= value < 1) if closed_low else (0 < value < 1)):  # type: ignore[operator]
        raise invalid(field, value, f"use a fraction in {'[' if closed_low else '('}0, 1)")


def at_least(field: str, value: object, low: float, what: str = "a value") -> None:
    """``value`` ≥ ``low``; None passes. ``what`` ("an integer", …) also demands an int."""
    if value is None:
        return
    wrong_type = not _number(value) or (what.startswith("an integer") and not isinstance(value, int))
    if wrong_type or value < low:  # type: ignore[operator]
        raise invalid(field, value, f"use {what} ≥ {low}")


def in_range(field: str, value: object, low: int, high: int, what: str = "an integer") -> None:
    """An integer in low..high; None passes."""
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise invalid(field, value, f"use {what} in {low}..{high}")


def seed(field: str, value: object) -> None:
    in_range(field, value, 0, MAX_SEED)

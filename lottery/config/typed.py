"""Typed dataclass configs from plain dicts: every key and type checked, errors that name the field.

The dataclasses are the single source of truth (OpenLTH's idea): types, defaults and the ``help`` metadata
drive validation, ``--help`` and the README's reference. Errors are ``ConfigError`` with one line:
``<dotted.field>: <value> is not valid; <what is>``.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, Union


class ConfigError(ValueError):
    """A config value, key or file that cannot be used; the message names the field."""


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(map(repr, typing.get_args(tp)))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin in (list, tuple):
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    if origin is dict:
        return "a mapping"
    if tp is type(None):
        return "null"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(tp, str(tp))


def _bad(field: str, value: Any, tp: Any) -> ConfigError:
    return ConfigError(f"{field}: {value!r} is not valid; expected {_type_name(tp)}")


def convert(tp: Any, value: Any, field: str) -> Any:
    """``value`` checked (and minimally coerced: int → float) against the annotation ``tp``."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        if value is None:
            return tp()
        if not isinstance(value, Mapping):
            raise _bad(field, value, tp)
        return from_dict(tp, value, field + ".")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{field}: {value!r} is not valid; choose one of {', '.join(map(str, args))}")
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return convert(arg, value, field)
            except ConfigError:
                pass
        raise _bad(field, value, tp)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise _bad(field, value, tp)
        return [convert(args[0], v, f"{field}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, Mapping):
            raise _bad(field, value, tp)
        return {str(k): convert(args[1], v, f"{field}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise _bad(field, value, tp)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad(field, value, tp)
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                raise _bad(field, value, tp) from None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise _bad(field, value, tp)
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise _bad(field, value, tp)
        return value
    raise TypeError(f"unsupported config annotation {tp!r} for {field}")


def from_dict(cls: type, data: Mapping[str, Any], prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{prefix}{key}: unknown key{hint}; valid keys: {', '.join(names)}")
    return cls(**{k: convert(hints[k], v, prefix + k) for k, v in data.items()})


def to_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)


def non_defaults(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted keys whose value differs from the dataclass default."""
    out: dict[str, Any] = {}
    default = type(obj)()
    for f in dataclasses.fields(obj):
        value, base = getattr(obj, f.name), getattr(default, f.name)
        if dataclasses.is_dataclass(value):
            out.update(non_defaults(value, f"{prefix}{f.name}."))
        elif value != base:
            out[prefix + f.name] = value
    return out


def describe(cls: type, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(dotted key, type, default, help) for every leaf field: the config reference."""
    rows = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            rows += describe(tp, f"{prefix}{f.name}.")
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        rows.append((prefix + f.name, _type_name(tp), repr(default), f.metadata.get("help", "")))
    return rows


def document(cls: type) -> type:
    """Append every field's meaning, type and default (what ``--help`` and the README's reference print: one
    definition) to the class docstring, so ``help(PruneConfig)`` says what each field does."""
    head = (cls.__doc__ or "").strip() if not (cls.__doc__ or "").startswith(f"{cls.__name__}(") else ""
    rows = [f"    {key} ({tp}, default {default}): {text}" for key, tp, default, text in describe(cls)]
    cls.__doc__ = "\n\n".join(part for part in (head, "Fields:\n" + "\n".join(rows)) if part)
    return cls


def set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    """Apply one ``a.b.c=value`` override to a nested dict (creating sections as needed)."""
    parts = key.split(".")
    if not all(parts):
        raise ConfigError(f"override {key!r}: empty key part; write section.field=value")
    node = data
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"override {key!r}: {'.'.join(parts[: i + 1])} is a value, not a section")
        node = child
    node[parts[-1]] = value

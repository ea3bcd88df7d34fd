"""Experiment configs: typed dataclasses, YAML files, dotted overrides, validation with clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from lottery.checks import not_a
from lottery.config.schema import (
    Config,
    DataConfig,
    InitConfig,
    ModelConfig,
    OptimConfig,
    PruneConfig,
    TrainConfig,
    WandbConfig,
    validate,
)
from lottery.config.typed import ConfigError, describe, from_dict, non_defaults, set_dotted, to_dict
from lottery.config.yaml_text import YAMLLimit, load_yaml

__all__ = [
    "Config", "ConfigError", "DataConfig", "InitConfig", "ModelConfig", "OptimConfig", "PruneConfig",
    "TrainConfig", "WandbConfig", "describe", "from_dict", "load", "non_defaults", "parse_overrides",
    "resolve", "to_dict", "to_yaml", "validate",
]


def read_yaml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {str(p)!r} {not_a(p, 'file')}; give a YAML config file (see configs/)")
    try:
        data = load_yaml(p.read_text())
    except YAMLLimit as e:
        raise ConfigError(f"config file {str(p)!r}: {e}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"config file {str(p)!r}: not valid YAML{where} ({getattr(e, 'problem', e)})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"config file {str(p)!r}: cannot read it ({e})") from None
    if data is None:
        raise ConfigError(f"config file {str(p)!r} is empty; write at least one section (e.g. `model: "
                          "{name: lenet_300_100}`), or start from one of configs/*.yaml")
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise ConfigError(f"config file {str(p)!r}: the top level must be a mapping of sections, not {kind}")
    return data


def parse_overrides(items: list[str]) -> list[tuple[str, Any]]:
    """``section.field=value`` strings; values are YAML (``3``, ``1e-3``, ``null``, ``[1, 2]``, ``true``)."""
    out = []
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r}: expected section.field=value (e.g. prune.rounds=3)")
        try:
            value = load_yaml(text) if text.strip() else ""
        except YAMLLimit as e:
            raise ConfigError(f"override {key.strip()}: its value {e}") from None
        except yaml.YAMLError:
            value = text
        out.append((key.strip(), value))
    return out


def resolve(data: dict[str, Any], overrides: list[str] = ()) -> Config:  # type: ignore[assignment]
    data = dict(data)
    for key, value in parse_overrides(list(overrides)):
        set_dotted(data, key, value)
    cfg = from_dict(Config, data)
    validate(cfg)
    return cfg


def load(path: str | Path, overrides: list[str] = ()) -> Config:  # type: ignore[assignment]
    """Read, override, type-check and validate a YAML config; the name defaults to the file's stem."""
    data = read_yaml(path)
    data.setdefault("name", Path(path).stem)
    return resolve(data, overrides)


def to_yaml(cfg: Config) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)

"""lottery: lottery-ticket pruning for PyTorch Lightning with regenerated (zero-storage) initialisations.

The public names, importable from here::

    from lottery import LotteryTicket, PruneConfig, InitSpec, load_ticket

``import lottery`` stays light: each name loads its module (and torch, Lightning) on first use.
"""

from __future__ import annotations

import importlib
from importlib import metadata
from typing import Any

try:
    __version__ = metadata.version("lottery")
except metadata.PackageNotFoundError:  # a checkout on sys.path, not installed
    __version__ = "0+unknown"

# name → the module that defines it (one table: __all__, dir() and the lazy loader read it)
PUBLIC = {
    "LotteryTicket": "lottery.callbacks",
    "PruneConfig": "lottery.config",
    "Config": "lottery.config",
    "ConfigError": "lottery.config",
    "load": "lottery.config",
    "InitSpec": "lottery.init",
    "initialize": "lottery.init",
    "Ticket": "lottery.export",
    "load_ticket": "lottery.export",
    "load_sparse": "lottery.export",
    "run": "lottery.runner",
    "register": "lottery.models",
    "EpochSampler": "lottery.data.sampler",
    "TensorDataModule": "lottery.data",
}
__all__ = ["__version__", *PUBLIC]


def __getattr__(name: str) -> Any:
    if name not in PUBLIC:
        raise AttributeError(f"module 'lottery' has no attribute {name!r}")
    value = getattr(importlib.import_module(PUBLIC[name]), name)
    globals()[name] = value  # loaded once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(PUBLIC))

"""Regenerable initialisation: schemes × sources, w0 recomputed on demand."""

from lottery.init.apply import (
    NotRegenerableError,
    initial_state,
    initial_value,
    initialize,
    mark_stacked,
    members_of,
    spec_of,
)
from lottery.init.schemes import SCHEMES, TARGETS, Fans, scheme
from lottery.init.spec import BIAS_RULES, SOURCES, InitSpec

__all__ = [
    "BIAS_RULES",
    "SCHEMES",
    "SOURCES",
    "TARGETS",
    "Fans",
    "InitSpec",
    "NotRegenerableError",
    "initial_state",
    "initial_value",
    "initialize",
    "mark_stacked",
    "members_of",
    "scheme",
    "spec_of",
]

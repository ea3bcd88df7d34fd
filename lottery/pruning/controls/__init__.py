"""Controls of a ticket, one small file each plus one registry line here."""

from __future__ import annotations

from lottery.pruning.controls.base import Control
from lottery.pruning.controls.random_prune import RandomPrune
from lottery.pruning.controls.reinit import Reinit
from lottery.pruning.controls.signed_constant import SignedConstant

CONTROLS: dict[str, type[Control]] = {c.name: c for c in (Reinit, RandomPrune, SignedConstant)}  # type: ignore[misc]


def control(name: str | None, seed_shift: int, field: str = "prune.control") -> Control:
    """The control ``name`` (None: the ticket itself), or ``ValueError`` naming the choices."""
    if name is not None and name not in CONTROLS:
        raise ValueError(f"{field}: {name!r} is not valid; choose one of {', '.join(CONTROLS)} (or null: the "
                         "ticket itself)")
    return (CONTROLS[name] if name else Control)(seed_shift)


__all__ = ["CONTROLS", "Control", "control"]

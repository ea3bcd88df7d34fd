"""Where a ticket's θ0 comes from: the ``InitSpec`` attached to the module (regenerated on demand, zero
bytes stored), or, for weights that came from no spec, one explicit stored copy."""

from __future__ import annotations

import warnings
from typing import Any

import torch
from pytorch_lightning.utilities import rank_zero_warn
from torch import nn

from lottery.init import InitSpec, initial_value, initialize
from lottery.init.apply import SPEC_ATTR, check_regenerable, shifted


class Theta0:
    def __init__(self) -> None:
        self.owner: tuple[str, nn.Module] | None = None  # (prefix, the submodule that carries the spec)
        self.copy: dict[str, torch.Tensor] | None = None

    @property
    def available(self) -> bool:
        return self.copy is not None or self.owner is not None

    def find(self, module: nn.Module) -> None:
        self.owner = next(((prefix, sub) for prefix, sub in module.named_modules()
                           if getattr(sub, SPEC_ATTR, None) is not None), None)

    def begin(self, module: nn.Module, init: InitSpec | None, init_copy: bool) -> None:
        """At a fresh fit's start: keep a copy, or initialise from ``init`` (or ``InitSpec()`` when the module
        carries no spec), or use the spec the module carries."""
        self.find(module)
        if init_copy:
            warnings.warn("LotteryTicket(init_copy=True) stores a full copy of the initial weights", stacklevel=3)
            self.copy = {n: p.detach().clone() for n, p in module.named_parameters()}
        elif init is not None or self.owner is None:
            if init is None:
                rank_zero_warn("LotteryTicket(init=None): the module carries no InitSpec, so it is re-initialised "
                               "with InitSpec() (seed 0, xavier_normal/hash), replacing its current weights; pass "
                               "init=InitSpec(...) to choose the start, or init_copy=True to keep the weights")
            initialize(module, init or InitSpec())
            self.find(module)
        if not init_copy and self.owner is not None:
            check_regenerable(getattr(self.owner[1], SPEC_ATTR), type(module).__name__)

    def move_seed(self, shift: int, what: str) -> None:
        """Re-initialise the owner from its spec with every seed moved by ``shift`` (a control's own start)."""
        if self.owner is None or self.copy is not None:
            raise ValueError(f"{what} needs a regenerable start (an InitSpec)")
        owner = self.owner[1]
        initialize(owner, shifted(getattr(owner, SPEC_ATTR), shift))

    def restore(self, module: nn.Module, spec: Any, init_copy: bool, shift: int) -> None:
        """On resume: the module was freshly built with the start's own spec (``shift`` re-applies a
        control's), or carries none and takes the checkpoint's."""
        self.find(module)
        if self.owner is not None and shift:
            owner = self.owner[1]
            setattr(owner, SPEC_ATTR, shifted(getattr(owner, SPEC_ATTR), shift))
        elif self.owner is None and spec is not None and not init_copy:
            setattr(module, SPEC_ATTR, InitSpec.from_dict(spec) if isinstance(spec, dict)
                    else tuple(InitSpec.from_dict(s) for s in spec))
            self.find(module)

    def __call__(self, name: str, seed_shift: int = 0) -> torch.Tensor:
        """θ0 of a parameter (named as in the fitted module): regenerated, or from the explicit copy."""
        if self.copy is not None:
            return self.copy[name]
        if self.owner is None:
            raise ValueError("no init spec to regenerate θ0 from")
        prefix, owner = self.owner
        rel = name[len(prefix) + 1 :] if prefix else name
        spec = getattr(owner, SPEC_ATTR)
        return initial_value(owner, rel, shifted(spec, seed_shift) if seed_shift else spec)

    def seed(self, member: int | None) -> int:
        """The start's seed (member ``member``'s, when stacked); 0 without a spec."""
        spec = getattr(self.owner[1], SPEC_ATTR, None) if self.owner else None
        return (spec if isinstance(spec, InitSpec) else spec[member or 0]).seed if spec else 0

    def spec_state(self) -> dict[str, Any] | list[dict[str, Any]] | None:
        spec = getattr(self.owner[1], SPEC_ATTR, None) if self.owner else None
        if isinstance(spec, InitSpec):
            return spec.to_dict()
        return None if spec is None else [s.to_dict() for s in spec]

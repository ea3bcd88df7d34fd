"""A run whose loss or weights go non-finite has diverged: it is stopped and reported, never "finished",
and no masks are ever chosen from its weights (a NaN sorts anywhere, so magnitude pruning of NaN weights
keeps an arbitrary mask)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pytorch_lightning as pl
import torch

from lottery.callbacks.records import say


def non_finite_members(params: Mapping[str, torch.Tensor], members: int | None) -> dict[int | None, str]:
    """Member (``None``: the whole network) → the first tensor holding non-finite values and how many; one
    ``isfinite`` reduction per tensor, cheap enough for every epoch."""
    found: dict[int | None, str] = {}
    for name, p in params.items():
        if members is None:
            bad = int((~torch.isfinite(p)).sum())
            if bad and None not in found:
                found[None] = f"weights {name!r} ({bad} non-finite values)"
            continue
        per = (~torch.isfinite(p.detach().reshape(members, -1))).sum(1).tolist()
        for m, bad in enumerate(per):
            if bad and m not in found:
                found[m] = f"weights {name!r} ({bad} non-finite values)"
    return found


def non_finite_metrics(metrics: Mapping[str, Any], members: int | None) -> dict[int | None, str]:
    """Member → the first loss metric (``train_loss``, ``val_loss``; ``…/mK`` per member) that is not finite."""
    found: dict[int | None, str] = {}
    for key, value in metrics.items():
        base, _, suffix = key.partition("/m")
        if not base.endswith("_loss"):
            continue
        number = float(value)
        if math.isfinite(number):
            continue
        member = int(suffix) if suffix.isdigit() and members else None
        if member is None and members:  # the members' mean: every member is suspect until its own says
            continue
        found.setdefault(member, f"{key} {number}")
    return found


def divergence(metrics: Mapping[str, Any], params: Mapping[str, torch.Tensor], members: int | None,
               round_: int, epoch: int, step: int) -> dict[str, Any] | None:
    """When and what went non-finite (``members``: the stacked members that did), or None if nothing did."""
    found = non_finite_metrics(metrics, members)
    for member, what in non_finite_members(params, members).items():
        found.setdefault(member, what)
    if not found:
        return None
    first = found[min(found, key=lambda m: -1 if m is None else m)]
    return {"round": round_, "epoch": epoch, "step": step, "what": first,
            "members": sorted(m for m in found if m is not None)}


def divergence_line(diverged: dict[str, Any], members: int | None) -> str:
    """The one line a diverged run prints (``diverged``: what ``divergence`` found)."""
    where = f" (members {diverged['members']})" if members else ""
    return (f"diverged in round {diverged['round']}, epoch {diverged['epoch']}: {diverged['what']}{where}; "
            "training stopped, nothing pruned from it")


def diverged_fit(trainer: pl.Trainer, params: Mapping[str, torch.Tensor], members: int | None,
                 round_: int) -> dict[str, Any] | None:
    """What went non-finite in a fit now (its line said here, once: the caller keeps what it returns and
    stops the fit), or None if nothing did."""
    found = divergence(trainer.callback_metrics, {n: p.detach() for n, p in params.items()}, members, round_,
                       trainer.current_epoch, trainer.global_step)
    if found is not None:
        say(divergence_line(found, members))
    return found

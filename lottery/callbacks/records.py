"""A round's record: density per layer, the eval metrics at its end and at its best epoch (Frankle & Carbin's
early-stopping iteration), sleeping fractions, and the optional sleeping check."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_only

from lottery.callbacks.sleeping import accuracy, sleeping_fractions
from lottery.config import PruneConfig
from lottery.pruning.prunable import Prunable

log = logging.getLogger("lottery")
Best = tuple[float, int, int, dict[str, float]]  # best monitor value, epochs and steps to it, eval metrics then
_MEMBER_KEY = re.compile(r"/m\d+$")


def _is_eval_metric(key: str) -> bool:
    return key.split("_")[0].split("/")[0] in ("val", "test")


def member_metrics(metrics: Mapping[str, Any], member: int | None) -> dict[str, float]:
    """The eval metrics of one stacked member (logged as ``val_acc/m3``), under their plain names; for an
    unstacked network (``member=None``) the eval metrics without a member suffix."""
    if member is None:
        return {k: float(v) for k, v in metrics.items() if _is_eval_metric(k) and not _MEMBER_KEY.search(k)}
    suffix = f"/m{member}"
    return {k.removesuffix(suffix): float(v) for k, v in metrics.items() if _is_eval_metric(k) and k.endswith(suffix)}


def update_bests(bests: dict[int | None, Best], metrics: Mapping[str, Any], prune: PruneConfig,
                 members: Iterable[int | None], epochs: int, steps: int) -> None:
    """Record in ``bests`` each member's new best of ``prune.monitor`` (``val_loss/m3`` for member 3) at an
    evaluation ``epochs`` and ``steps`` into the round, with every eval metric then."""
    for member in members:
        key = prune.monitor if member is None else f"{prune.monitor}/m{member}"
        if key not in metrics:
            continue
        value, best = float(metrics[key]), bests.get(member)
        if best is None or (value > best[0] if prune.monitor_mode == "max" else value < best[0]):
            bests[member] = (value, epochs, steps, member_metrics(metrics, member))


@torch.no_grad()
def member_record(t: Prunable, prune: PruneConfig, metrics: Mapping[str, Any], member: int | None,
                  best: Best | None, w0: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    masks = {n: t.slice(m, member) for n, m in t.masks.items()}
    alive = {n: int(m.sum()) for n, m in masks.items()}
    sizes = {n: m.numel() for n, m in masks.items()}
    rec: dict[str, Any] = {"remaining_pct": 100.0 * sum(alive.values()) / sum(sizes.values())}
    rec.update({f"remaining_pct/{n}": 100.0 * alive[n] / sizes[n] for n in masks})
    rec.update(member_metrics(metrics, member))
    if best is not None:
        rec[f"best_{prune.monitor}"], rec["epochs_to_best"], rec["steps_to_best"] = best[:3]
        # F&C report test accuracy at the early-stopping iteration: every eval metric at the best epoch
        rec.update({f"at_best/{k}": v for k, v in best[3].items()})
    for n, mask in masks.items() if w0 else ():
        w = t.slice(t.params[n].detach(), member)
        fr = sleeping_fractions(w, t.slice(w0[n], member), mask, tuple(prune.sleeping_thresholds),
                                tuple(prune.sleeping_relative))
        rec.update({f"sleeping/{n}/{k}": v for k, v in fr.items()})
    return rec


@torch.no_grad()
def sleeping_check(t: Prunable, tau: float, trainer: pl.Trainer, pl_module: pl.LightningModule,
                   w0: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """Zero the survivors that moved less than ``tau`` from w0 and re-measure validation accuracy."""
    if not trainer.val_dataloaders:
        return {}
    sleepers = {n: m & ((t.params[n].detach() - w0[n]).abs() <= tau) for n, m in t.masks.items()}
    loader = trainer.val_dataloaders
    loader = loader[0] if isinstance(loader, (list, tuple)) else loader
    was_training = pl_module.training
    pl_module.eval()
    before = accuracy(pl_module, loader, pl_module.device)
    saved = {n: t.params[n].detach()[s].clone() for n, s in sleepers.items()}
    for n, s in sleepers.items():
        t.params[n].data[s] = 0
    after = accuracy(pl_module, loader, pl_module.device)
    for n, s in sleepers.items():
        t.params[n].data[s] = saved[n]
    pl_module.train(was_training)
    n_alive = sum(int(m.sum()) for m in t.masks.values())
    return {"sleeping_check/fraction": sum(int(s.sum()) for s in sleepers.values()) / max(1, n_alive),
            "sleeping_check/acc_before": before, "sleeping_check/acc_after": after,
            "sleeping_check/acc_change": after - before}


def round_line(record: dict[str, Any], round_: int, total: int, members: int | None) -> str:
    """The one line per round: ``round 3/19 · 51.3 % remaining · val 97.90 % · test 97.85 %`` (rounds number
    from 0, the dense one, to ``total - 1``, as in rounds.csv, masks/round-NN.npz and exports)."""
    parts = [f"round {round_}/{total - 1}", f"{record['remaining_pct']:.1f} % remaining"]
    parts += [f"{k.removesuffix('_acc').replace('_', ' ')} {100 * v:.2f} %" for k, v in record.items()
              if k.split("_")[0] in ("val", "test") and k.endswith("acc")]
    if members:
        parts.append(f"mean of {members} members")
    return " · ".join(parts)


def flat_metrics(record: dict[str, Any]) -> dict[str, Any]:
    """A record as logger metrics: ``lottery/<key>``, stacked members' under ``lottery/m<k>/<key>``."""
    flat = {f"lottery/{k}": v for k, v in record.items() if k != "members"}
    for m, rec in enumerate(record.get("members", [])):
        flat.update({f"lottery/m{m}/{k}": v for k, v in rec.items()})
    return flat


@rank_zero_only
def say(message: str) -> None:
    """A log line on rank 0: through the ``lottery`` logger when the application configured logging that
    lets INFO through (the CLIs print it above the progress bars), else straight to stderr, so it shows in
    any Trainer, also after a user's ``logging.basicConfig()`` (root at WARNING)."""
    if log.hasHandlers() and log.isEnabledFor(logging.INFO):
        log.info(message)
    else:
        print(message, file=sys.stderr, flush=True)


def round_record(t: Prunable, prune: PruneConfig, trainer: pl.Trainer, pl_module: pl.LightningModule, round_: int,
                 best: Mapping[int | None, Best], initial: Callable[[str], torch.Tensor] | None) -> dict[str, Any]:
    """The round's record; for stacked members, ``members`` holds one such record per member. ``initial``
    regenerates a tensor's w0 for the sleeping fractions (None: the start cannot be regenerated)."""
    metrics = trainer.callback_metrics
    rec: dict[str, Any] = {"round": round_, "epoch": trainer.current_epoch, "step": trainer.global_step}
    sleeping = initial is not None and bool(prune.sleeping_thresholds or prune.sleeping_relative
                                            or prune.sleeping_check)
    w0 = {n: initial(n) for n in t.masks} if sleeping else {}
    members = [member_record(t, prune, metrics, m, best.get(m), w0) for m in t.ids()]
    if t.members is None:
        rec.update(members[0])
        if prune.sleeping_check is not None and w0:  # w0 is empty when it cannot be regenerated
            rec.update(sleeping_check(t, prune.sleeping_check, trainer, pl_module, w0))
        return rec
    rec["remaining_pct"] = sum(m["remaining_pct"] for m in members) / len(members)
    rec.update(member_metrics(metrics, None))  # the members' means, for the log line
    rec["members"] = members
    return rec


def member_history(history: list[dict[str, Any]], member: int | None) -> list[dict[str, Any]]:
    """The finished rounds as an unstacked run records them: stacked member ``member``'s own (``None``: the
    history as it is)."""
    if member is None:
        return list(history)
    return [{"round": r["round"], "epoch": r["epoch"], "step": r["step"], **r["members"][member]} for r in history]

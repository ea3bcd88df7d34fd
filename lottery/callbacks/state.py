"""The callback's checkpoint state: masks bit-packed, the round, its records and what the rewind keeps."""

from __future__ import annotations

from typing import Any

import torch

from lottery.columns import current_names
from lottery.pruning import pack_bits, unpack_bits


def save_state(ticket: Any) -> dict[str, Any]:
    r = ticket.rewind
    return {
        "version": 1,
        "round": ticket.round,
        "done": ticket.done,
        "history": ticket.history,
        "masks": {n: pack_bits(m) for n, m in ticket.masks.items()},
        "density": ticket.tensors.density if ticket.tensors is not None else {},
        "round_start": list(ticket._round_start),
        "best": ticket._best,
        "spec": ticket.theta0.spec_state(),
        "snapshot": r.snapshot,
        "buffers0": r.buffers0,
        "copy": ticket.theta0.copy,
        "lr_start": r.lr_start,
        "pending_lr_reset": r.pending_lr_reset,
    }


def load_state(ticket: Any, state: dict[str, Any]) -> None:
    """Put a checkpoint's state into ``ticket`` (whose prunable tensors are known), after checking that its
    masks fit them and its round fits the schedule; ``ValueError`` otherwise."""
    params, masks = ticket.tensors.params, {}
    for name, packed in state["masks"].items():
        if name not in params:
            raise ValueError(f"checkpoint mask {name!r} matches no prunable parameter ({list(params)})")
        if tuple(packed["shape"]) != tuple(params[name].shape):
            raise ValueError(f"checkpoint mask for {name!r} has shape {tuple(packed['shape'])}, "
                             f"but the parameter has shape {tuple(params[name].shape)}")
        masks[name] = unpack_bits(packed, params[name].device)
    missing = sorted(set(params) - set(masks))
    if missing:
        raise ValueError(f"checkpoint has no mask for {missing}")
    ticket.check_state(state)
    ticket.tensors.masks, ticket.tensors.density = masks, dict(state["density"])
    # a checkpoint from before a rename: its finished rounds under today's names, as the next ones are written
    ticket.round, ticket.done = state["round"], state["done"]
    ticket.history = [current_names(r) for r in state["history"]]
    best = state["best"]
    ticket._best = best if isinstance(best, dict) else {} if best is None else {None: best}
    ticket._round_start = tuple(state["round_start"])
    ticket.theta0.copy = state["copy"]
    r = ticket.rewind
    r.snapshot = state["snapshot"]
    r.buffers0 = dict(state.get("buffers0") or {})  # absent in checkpoints from before buffers rewound
    r.lr_start, r.pending_lr_reset = state["lr_start"], state["pending_lr_reset"]


def check_state(state: dict[str, Any], rounds: int | None) -> None:
    """``ValueError`` unless a checkpoint's state fits this schedule: its round inside it, every mask keeping
    some weight (a damaged or foreign checkpoint would train an empty layer)."""
    rnd = state.get("round")
    if not isinstance(rnd, int) or rnd < 0 or (rounds is not None and rnd >= rounds):
        raise ValueError(f"its round {rnd!r} is outside this schedule of {rounds} rounds; resume with the "
                         "config that wrote it")
    masks = state.get("masks")
    if not isinstance(masks, dict):
        raise ValueError("it holds no masks")
    empty = [n for n, packed in masks.items() if not bool(unpack_bits(packed, "cpu").any())]
    if empty:
        raise ValueError(f"its masks of {empty} keep no weight at all")


def held_bytes(ticket: Any) -> dict[str, int]:
    """Bytes ``ticket`` holds for lottery state: masks, θ0 copies, snapshots, the hot path's mask copies."""

    def size(d: dict[str, torch.Tensor] | None) -> int:
        return sum(t.numel() * t.element_size() for t in (d or {}).values())

    hot = ticket._hot
    return {
        "masks": size(ticket.masks),
        # the hot path's float mask copies: only on CPU without the C kernel
        "mask_cache": hot.extra_bytes() if hot is not None else 0,
        "theta0": size(ticket.theta0.copy),
        "snapshot": size(ticket.rewind.snapshot),
        "prunable_weights": sum(m.numel() for m in ticket.masks.values()),
    }

"""What the next round's masks are: prune by a criterion (layer-wise or one global threshold), replay the
levels a finished run saved (Frankle & Carbin's controls train a ticket's masks with other weights), or choose
each level's masks at initialisation (SNIP, GraSP, SynFlow, …)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from lottery.pruning.at_init import Batch, prune_at_init
from lottery.pruning.criteria import CRITERIA, score_key
from lottery.pruning.prunable import Prunable
from lottery.pruning.select import select_global, select_layerwise

Initial = Callable[[str], torch.Tensor]  # a tensor's w0 (every member), regenerated


def member_seed(seeds: int | Sequence[int], member: int | None) -> int:
    return seeds if isinstance(seeds, int) else seeds[member or 0]


class PruneByCriterion:
    """Each unit keeps its highest-scoring survivors down to its density × (1 − rate); with ``scope='global'``
    the tensors without a rate of their own share one threshold per member. ``seeds`` key the scores of
    random criteria: one int (stacked members draw by index) or one per member (member k draws what its cell
    draws alone)."""

    def __init__(self, criterion: str, scope: str, seeds: int | Sequence[int], invert: bool = False) -> None:
        self.score, self.scope, self.seeds, self.sign = CRITERIA[criterion], scope, seeds, -1.0 if invert else 1.0

    @torch.no_grad()
    def __call__(self, t: Prunable, level: int, initial: Initial) -> None:
        scores, pooled = {}, {}
        w0: dict[str, torch.Tensor] = {}  # one tensor's w0 (all members), regenerated once, not once per member
        for name, member in t.units():
            w, m = t.slice(t.params[name].detach(), member), t.slice(t.masks[name], member)

            def init(name: str = name, member: int | None = member) -> torch.Tensor:
                if name not in w0:
                    w0.clear()
                    w0[name] = initial(name)
                return t.slice(w0[name], member)

            unit = t.unit(name, member)
            if isinstance(self.seeds, int):
                key = score_key(self.seeds, name, level - 1, member or 0)
            else:
                key = score_key(self.seeds[member or 0], name, level - 1, 0)
            scores[unit] = self.sign * self.score(w, init, key)
            t.density[unit] *= 1.0 - t.rates[name]
            if self.scope == "global" and name not in t.own_rate:
                pooled.setdefault(member, []).append((name, unit))
            else:
                m.copy_(select_layerwise(scores[unit], m, t.density[unit]))
        for member, group in pooled.items():
            masks = [t.slice(t.masks[n], member) for n, _ in group]
            targets = [t.density[u] for _, u in group]
            for m, new in zip(masks, select_global([scores[u] for _, u in group], masks, targets), strict=True):
                m.copy_(new)


class ReplayLevels:
    """The masks a finished run trained with at each level (``levels[member][level][name]``)."""

    def __init__(self, levels: list[list[dict[str, torch.Tensor]]], seeds: int | Sequence[int],
                 start_seed: Callable[[int | None], int]) -> None:
        self.levels, self.seeds, self.start_seed = levels, seeds, start_seed

    def mask(self, source: torch.Tensor, name: str, member: int | None, level: int) -> torch.Tensor:
        return source

    @torch.no_grad()
    def __call__(self, t: Prunable, level: int, initial: Initial) -> None:
        for name, member in t.units():
            source = self.levels[member or 0][level][name]
            t.slice(t.masks[name], member).copy_(self.mask(source, name, member, level))


Source = Callable[[], tuple[nn.Module, dict[str, torch.Tensor], list[Batch]]]


class PruneAtInit:
    """Pruning at initialisation (``prune.at_init``): every level's masks chosen afresh by a score of the whole
    network at w0 (``lottery.pruning.at_init``), down to the densities this run's rates give that level (one
    threshold over the tensors without a rate of their own with ``scope='global'``, as IMP's). The callback
    ``attach``\\ es what it scores with: the module, its buffers at w0 and a few training batches."""

    def __init__(self, method: str, scope: str, seed: int, invert: bool = False) -> None:
        self.method, self.scope, self.seed, self.invert = method, scope, seed, invert
        self.source: Source | None = None

    def attach(self, source: Source) -> None:
        self.source = source

    def __call__(self, t: Prunable, level: int, initial: Initial) -> None:
        if t.members or self.source is None:
            raise ValueError("prune.at_init: needs a network alone (not stacked members), attached by the callback")
        for name, member in t.units():
            t.density[t.unit(name, member)] *= 1.0 - t.rates[name]
        # a round ends inside Lightning's evaluation (no grad, inference mode): scores need autograd
        with torch.inference_mode(False), torch.enable_grad():
            module, buffers, batches = self.source()
            params = {**{n: b.clone() for n, b in buffers.items()},
                      **{n: initial(n).to(p.device) for n, p in module.named_parameters()}}
            pooled = [n for n in t.params if self.scope == "global" and n not in t.own_rate]
            masks = prune_at_init(module, params, {n: t.density[n] for n in t.params}, self.method, pooled,
                                  batches, score_key(self.seed, "at-init", level, 0), self.invert)
        for name, mask in masks.items():
            t.masks[name].copy_(mask)

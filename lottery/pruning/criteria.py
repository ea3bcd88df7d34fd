"""Pruning criteria: a score per weight; the lowest-scoring surviving weights are pruned.

Adding one is one function plus one ``@criterion`` line. ``init()`` regenerates w0 from the generator
(never from a stored copy) and is only called by criteria that need it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from lottery.generators import STANDARD_UNIFORM, HashStream, draw, stream_key

Score = Callable[[torch.Tensor, Callable[[], torch.Tensor], int], torch.Tensor]
CRITERIA: dict[str, Score] = {}


def criterion(name: str) -> Callable[[Score], Score]:
    def register(fn: Score) -> Score:
        CRITERIA[name] = fn
        return fn

    return register


@criterion("magnitude")
def magnitude(w: torch.Tensor, init: Callable[[], torch.Tensor], key: int) -> torch.Tensor:
    """|w_final|: Frankle & Carbin's criterion (Zhou et al.'s large_final)."""
    return w.abs()


@criterion("movement")
def movement(w: torch.Tensor, init: Callable[[], torch.Tensor], key: int) -> torch.Tensor:
    """|w − w0|: prunes the sleeping weights, those that barely moved from their initial value."""
    return (w - init()).abs()


@criterion("magnitude_increase")
def magnitude_increase(w: torch.Tensor, init: Callable[[], torch.Tensor], key: int) -> torch.Tensor:
    """|w| − |w0| (Zhou et al. 2019)."""
    return w.abs() - init().abs()


@criterion("large_init")
def large_init(w: torch.Tensor, init: Callable[[], torch.Tensor], key: int) -> torch.Tensor:
    """|w0|: keep the weights that started large (Zhou et al. 2019)."""
    return init().abs()


@criterion("random")
def random(w: torch.Tensor, init: Callable[[], torch.Tensor], key: int) -> torch.Tensor:
    """Uniform scores from the hash generator: random pruning, reproducible from the key."""
    return draw(HashStream(key), w.numel(), STANDARD_UNIFORM, torch.float64, w.device).reshape(w.shape)


def score_key(seed: int, name: str, round_: int, member: int) -> int:
    return stream_key(seed, f"prune-score/{name}/{member}/{round_}")

"""Batches sliced from one device-resident tensor (uint8 images, normalised per batch): ``randperm`` +
``index_select``, no per-sample Python, no DataLoader workers (per-sample PIL transforms were ≈ 2/3 of
OpenLTH's step time).

The order of epoch ``e`` is a pure function of ``(seed, e)``; Lightning hands the epoch over through
``sampler.set_epoch`` as it does for a ``DistributedSampler``, so a run resumed from a checkpoint sees the
same batches as an uninterrupted one.

Stacked members (``seed`` a sequence of K seeds): each member gets the order its own seed gives alone, all
K batches gathered by one ``index_select`` into ``[K, B, …]``; when every member has the same seed, the
batch is shared (``[B, …]``, and the stacked model broadcasts it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch

_MASK63 = (1 << 63) - 1


def epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 0x9E3779B97F4A7C15 + epoch * 0xBF58476D1CE4E5B9 + 1) & _MASK63


class Augment:
    """Random crop with padding by ``fill`` (per channel: uint8 0 for black) and horizontal flip."""

    def __init__(self, pad: int, fill: torch.Tensor, flip: bool = True) -> None:
        self.pad, self.fill, self.flip = pad, fill, flip

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        b, c, h, w = x.shape
        p = self.pad
        padded = self.fill.view(1, c, 1, 1).expand(b, c, h + 2 * p, w + 2 * p).clone()
        padded[:, :, p : p + h, p : p + w] = x
        dy = torch.randint(0, 2 * p + 1, (b,), generator=g).to(x.device)
        dx = torch.randint(0, 2 * p + 1, (b,), generator=g).to(x.device)
        flip = torch.rand(b, generator=g).to(x.device) < 0.5
        rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
        cols = torch.arange(w, device=x.device).expand(b, w)
        if self.flip:
            cols = torch.where(flip[:, None], w - 1 - cols, cols)
        cols = (dx[:, None] + cols)[:, None, None, :]
        return padded[torch.arange(b, device=x.device)[:, None, None, None], torch.arange(c, device=x.device)[
            None, :, None, None], rows, cols]


class TensorBatches:
    """An iterable of ``(x, y)`` batches over tensors; ``len`` is the number of items per epoch.

    ``chunk`` groups that many consecutive batches into one item (a list), so a training step can take
    several optimizer steps per call and amortise Lightning's ≈ 0.85 ms per-call overhead; the batches,
    their order and the optimizer steps are exactly those of ``chunk=1``. ``seed``: one seed, or one per
    stacked member (see the module docstring).
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int | Sequence[int] = 0,
        augment: Augment | None = None,
        drop_last: bool = False,
        chunk: int = 1,
        normalize: Callable[[torch.Tensor], torch.Tensor] | None = None,
        shard: tuple[int, int] = (0, 1),
    ) -> None:
        self.x, self.y, self.batch_size, self.shard = x, y, batch_size, shard
        self.shuffle, self.seed, self.augment, self.drop_last = shuffle, seed, augment, drop_last
        self.chunk, self.normalize = chunk, normalize
        self.epoch = 0
        self.sampler = self  # Lightning calls dataloader.sampler.set_epoch(epoch) at each epoch start
        self.batch_sampler = None  # (and inspects these two attributes as it would a DataLoader's)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @property
    def batches(self) -> int:
        n, world = len(self.x), self.shard[1]
        # under DDP a last batch with fewer items than ranks is dropped: a rank must never get an empty shard
        drop = self.drop_last or 0 < n % self.batch_size < world
        return n // self.batch_size if drop else -(-n // self.batch_size)

    def _split(self, xb: torch.Tensor, yb: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's part of a batch (``shard`` = (rank, ranks)): contiguous, sizes within one of each
        other, so DDP's mean of the ranks' gradients is the batch's (exactly so when the parts are equal)."""
        rank, world = self.shard
        if world == 1:
            return xb, yb
        return xb.tensor_split(world, dim)[rank], yb.tensor_split(world, dim)[rank]

    def __len__(self) -> int:
        return -(-self.batches // self.chunk)

    def __iter__(self) -> Iterator:
        """``(x, y)`` batches; with ``chunk`` > 1, lists of up to ``chunk`` such batches (see ``Classifier``)."""
        if self.chunk == 1:
            yield from self._batches()
            return
        group = []
        for batch in self._batches():
            group.append(batch)
            if len(group) == self.chunk:
                yield group
                group = []
        if group:
            yield group

    def _batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if isinstance(self.seed, int) or len(set(self.seed)) == 1:
            yield from self._shared_batches(self.seed if isinstance(self.seed, int) else self.seed[0])
            return
        n, bs, k = len(self.x), self.batch_size, len(self.seed)
        gens = [torch.Generator().manual_seed(epoch_seed(s, self.epoch)) for s in self.seed]
        orders = torch.stack([torch.randperm(n, generator=g) for g in gens]).to(self.x.device)
        for i in range(self.batches):
            idx = orders[:, i * bs : (i + 1) * bs]
            xb = self.x.index_select(0, idx.reshape(-1)).view(k, idx.shape[1], *self.x.shape[1:])
            yb = self.y.index_select(0, idx.reshape(-1)).view(k, idx.shape[1])
            if self.augment is not None:
                xb = torch.stack([self.augment(xb[m], g) for m, g in enumerate(gens)])
            xb, yb = self._split(xb, yb, 1)
            yield (xb if self.normalize is None else self.normalize(xb)), yb

    def _shared_batches(self, seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n, bs = len(self.x), self.batch_size
        g = torch.Generator().manual_seed(epoch_seed(seed, self.epoch))
        order = torch.randperm(n, generator=g).to(self.x.device) if self.shuffle else None
        for i in range(self.batches):
            if order is None:
                xb, yb = self.x[i * bs : (i + 1) * bs], self.y[i * bs : (i + 1) * bs]
            else:
                idx = order[i * bs : (i + 1) * bs]
                xb, yb = self.x.index_select(0, idx), self.y.index_select(0, idx)
            if self.augment is not None:
                xb = self.augment(xb, g)  # the whole batch, so every rank draws what one process would
            xb, yb = self._split(xb, yb, 0)
            yield (xb if self.normalize is None else self.normalize(xb)), yb

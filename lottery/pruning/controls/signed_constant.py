"""Signed constant (Zhou et al. 2019): each kept weight is ± its layer's std of w0, with the sign of w0."""

from __future__ import annotations

import torch

from lottery.pruning.controls.base import Control, Regenerate


class SignedConstant(Control):
    name = "signed_constant"

    def rewound(self, initial: Regenerate, round_: int, replaying: bool, stacked: bool) -> torch.Tensor:
        w0 = initial(0)
        if stacked:  # each member's own layer std
            std = w0.double().flatten(1).std(dim=1).view(-1, *[1] * (w0.dim() - 1))
        else:
            std = w0.double().std()
        return torch.sign(w0) * std.to(w0.dtype)

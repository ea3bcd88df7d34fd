"""Masks: the 1-byte in-place multiply, bit-packing, and which weights each selection keeps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lottery.callbacks import LotteryTicket
from lottery.config import PruneConfig
from lottery.generators import can_mask_mul, has_kernel, mask_mul
from lottery.init import InitSpec
from lottery.pruning import keep_top, pack_bits, select_global, select_layerwise, unpack_bits
from lottery.pruning.levels import MaskSourceError, level_path, load_levels, save_level
from tests.lightning_helpers import PlainClassifier, synthetic, trainer

needs_kernel = pytest.mark.skipif(not has_kernel(), reason="C kernel not built")


@needs_kernel
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n", [1, 7, 1000, 3 * (1 << 18) + 5])  # the last is split across threads
def test_mask_mul_is_the_float_multiply_bit_for_bit(dtype: torch.dtype, n: int) -> None:
    g = torch.Generator().manual_seed(n)
    w = torch.randn(n, generator=g, dtype=dtype)
    w[:3] = torch.tensor([-1.5, float("nan"), float("inf")], dtype=dtype)[: min(3, n)]
    mask = torch.rand(n, generator=g) < 0.6
    mask[:3] = False
    expected = w.clone().mul_(mask.to(dtype))
    mask_mul(w, mask.view(torch.uint8))
    assert torch.equal(w.view(torch.int64 if dtype == torch.float64 else torch.int32),
                       expected.view(torch.int64 if dtype == torch.float64 else torch.int32))  # -0.0, NaN too


def test_mask_mul_refuses_what_it_cannot_do() -> None:
    w = torch.randn(4, 6)
    assert not can_mask_mul(w.t()) and not can_mask_mul(w.half()) and (can_mask_mul(w) == has_kernel())
    with pytest.raises(ValueError, match="mask_mul: needs"):
        mask_mul(w.t(), torch.ones(6, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match="mask_mul: needs"):
        mask_mul(w, torch.ones(5, dtype=torch.uint8))


@needs_kernel
def test_lottery_state_is_one_byte_per_weight_on_cpu() -> None:
    cb = LotteryTicket(PruneConfig(rounds=3, epochs_per_round=1, output_rate=None), init=InitSpec(), verbose=False)
    model = PlainClassifier()
    trainer(callbacks=[cb]).fit(model, *synthetic())
    state = cb.state_bytes()
    assert state["mask_cache"] == 0 and state["theta0"] == 0 and state["masks"] == state["prunable_weights"]
    for name, mask in cb.masks.items():
        assert (dict(model.named_parameters())[name][~mask] == 0).all()


def test_bit_packing_round_trips_any_shape() -> None:
    for shape in [(1,), (7,), (3, 5), (2, 3, 4, 5)]:
        mask = torch.rand(shape) < 0.5
        packed = pack_bits(mask)
        assert packed["bits"].numel() == (mask.numel() + 7) // 8
        assert torch.equal(unpack_bits(packed), mask)


def test_keep_top_keeps_the_highest_survivors_stable_on_ties() -> None:
    scores = torch.tensor([5.0, 1.0, 3.0, 3.0, 9.0, 0.5])
    alive = torch.tensor([True, True, True, True, False, True])  # 9.0 is pruned already: never revived
    kept = keep_top(scores, alive, 3)
    assert kept.tolist() == [True, False, True, True, False, False]
    tie = keep_top(torch.tensor([1.0, 2.0, 2.0, 2.0]), torch.ones(4, dtype=torch.bool), 2)
    assert tie.tolist() == [False, True, True, False]  # ties broken by position, the same on every run


def test_layerwise_selection_keeps_round_n_times_density_of_the_largest() -> None:
    w = torch.arange(1.0, 11.0).reshape(2, 5)
    mask = torch.ones(2, 5, dtype=torch.bool)
    new = select_layerwise(w.abs(), mask, 0.8)
    assert int(new.sum()) == 8 and not new.view(-1)[:2].any()  # the two smallest |w| go
    again = select_layerwise(w.abs(), new, 0.64)
    assert int(again.sum()) == 6 and not again.view(-1)[:4].any()


def test_global_selection_uses_one_threshold_across_tensors() -> None:
    a, b = torch.tensor([0.1, 0.2, 5.0, 6.0]), torch.tensor([1.0, 2.0, 3.0, 4.0])
    masks = [torch.ones(4, dtype=torch.bool), torch.ones(4, dtype=torch.bool)]
    new_a, new_b = select_global([a, b], masks, 0.5)
    assert new_a.tolist() == [False, False, True, True] and new_b.tolist() == [False, False, True, True]
    # the pool decides, not the layer: 3 of a's weights beat all but one of b's
    a, b = torch.tensor([1.0, 5.0, 6.0, 7.0]), torch.tensor([0.1, 0.2, 0.3, 8.0])
    new_a, new_b = select_global([a, b], masks, 0.5)
    assert new_a.tolist() == [False, True, True, True] and new_b.tolist() == [False, False, False, True]


def test_a_damaged_level_file_is_named(tmp_path) -> None:
    save_level(tmp_path, 0, {"w": torch.ones(5, 7, dtype=torch.bool)})
    assert torch.equal(load_levels(tmp_path)[0]["w"], torch.ones(5, 7, dtype=torch.bool))
    np.savez(level_path(tmp_path, 0), **{"w": np.zeros(2, dtype=np.uint8), "w::shape": np.array([5, 7])})
    with pytest.raises(MaskSourceError, match=r"round-00.npz: the mask of 'w' is damaged \(a packed mask of shape"):
        load_levels(tmp_path)

"""Masks, criteria and selection; nothing here knows about Lightning."""

from lottery.pruning.criteria import CRITERIA, criterion, score_key
from lottery.pruning.masks import MaskedMultiply, apply_masks, pack_bits, unpack_bits
from lottery.pruning.select import keep_top, select_global, select_layerwise

__all__ = [
    "CRITERIA",
    "MaskedMultiply",
    "apply_masks",
    "criterion",
    "keep_top",
    "pack_bits",
    "score_key",
    "select_global",
    "select_layerwise",
    "unpack_bits",
]

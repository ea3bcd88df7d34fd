"""Counter-based generators: every value is a pure function of (key, index)."""

from lottery.generators.draw import can_mask_mul, draw, has_kernel, mask_mul
from lottery.generators.hash import HashStream, name_stream, splitmix64, stream_key
from lottery.generators.sobol import SobolStream, direction_numbers
from lottery.generators.transform import STANDARD_NORMAL, STANDARD_UNIFORM, Transform

__all__ = [
    "STANDARD_NORMAL",
    "STANDARD_UNIFORM",
    "HashStream",
    "SobolStream",
    "Transform",
    "direction_numbers",
    "draw",
    "has_kernel",
    "can_mask_mul",
    "mask_mul",
    "name_stream",
    "splitmix64",
    "stream_key",
]

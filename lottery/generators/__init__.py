"""Counter-based generators: every value is a pure function of (key, index)."""

from lottery.generators.draw import draw, has_kernel
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
    "name_stream",
    "splitmix64",
    "stream_key",
]

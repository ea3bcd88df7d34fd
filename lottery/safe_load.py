"""Reading files a user hands over without ever running code from them.

An unrestricted ``torch.load`` unpickles arbitrary objects, so a crafted checkpoint, zoo run or generator
file would run its payload before any check. Everything lottery reads goes through ``load_weights_only``
(tensors and plain containers only, whatever the installed torch's default) or a pickle-free format.
"""

from __future__ import annotations

import io
import math
import pickle
import re
from pathlib import Path
from typing import Any

import torch


class UnsafeFile(ValueError):
    """A file that would run code when unpickled; it was not loaded."""


def load_weights_only(source: Path | bytes) -> Any:
    """The file's tensors and plain containers; ``UnsafeFile`` when it asks for any other global."""
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        if found:
            raise UnsafeFile(f"holds code, not only weights (it asks to call {found.group(1)} on loading); "
                             "refused unread") from None
        raise


def unreadable(e: Exception) -> str:
    """Why ``load_weights_only`` failed, in a few words."""
    if isinstance(e, UnsafeFile):
        return str(e)
    return f"cannot be read (truncated, or not a checkpoint: {type(e).__name__})"


def first_non_finite(obj: Any, where: str = "") -> str | None:
    """Where the first non-finite float in a checkpoint is (``state_dict/'model.1.weight'``, an optimizer's
    moments, a callback's state), with how many there are; None when every float is finite."""
    if isinstance(obj, torch.Tensor):
        if obj.is_floating_point() or obj.is_complex():
            bad = int((~torch.isfinite(obj)).sum())
            return f"{bad} in {where or 'a tensor'}" if bad else None
        return None
    if isinstance(obj, float):
        return None if math.isfinite(obj) else f"1 in {where}"
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list | tuple) else ()
    for key, value in items:
        found = first_non_finite(value, f"{where}/{key!r}" if where else repr(key))
        if found:
            return found
    return None

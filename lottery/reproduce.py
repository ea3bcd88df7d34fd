"""Does a retrained run reproduce its record? Bit for bit where the environment is the record's, otherwise
within the spread that the record's own seeds show.

A run is deterministic in one environment; in another (another torch, CPU code path or BLAS) its floats part
from the first step, so a bit-for-bit comparison there fails whatever the code does. The fallback still
fails on a real change: the rows' structure (rounds, levels, per-layer counts, steps) must be equal, and each
round's accuracies must differ from the record's by less than ``SIGMAS`` standard deviations of the difference
between two seeds of the same start (√2 × the seeds' standard deviation, measured on the record's own grid and
pooled over the rounds: four or five seeds give too noisy a deviation per round).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

from lottery.columns import current_names
from lottery.environment import mismatches
from lottery.results import run_environment

# Fields a retrain in another environment must still equal: what IMP decides from counts alone
STRUCTURE = ("round", "epoch", "step", "remaining_pct")
METRICS = ("test_acc", "val_acc", "at_best/test_acc")
SIGMAS = 4.0  # per round and metric: a chance of ≈ 6e-5 that one honest round of one metric fails, if normal
FLOOR = 2e-4  # accuracy: never narrower than two examples in 10,000 (seeds that agree exactly give no spread)


def differences(committed: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What differs between two records, row by row and key by key (timings excluded)."""
    out = []
    for key in ("rounds", "curve"):
        old_rows, new_rows = committed.get(key) or [], new.get(key) or []
        if len(old_rows) != len(new_rows):
            out.append(f"{key}: {len(old_rows)} committed rows, {len(new_rows)} retrained")
        for i, (a, b) in enumerate(zip(map(current_names, old_rows), map(current_names, new_rows), strict=False)):
            for k in sorted(set(a) | set(b)):  # a record from before a rename compares under today's names
                if a.get(k) != b.get(k):
                    out.append(f"{key}[{i}].{k}: committed {a.get(k)!r}, retrained {b.get(k)!r}")
    return out


def seed_spread(peers: Sequence[dict[str, Any]]) -> dict[str, float]:
    """metric → the standard deviation over ``peers`` (records of the same start, other seeds), pooled over
    the rounds they share (the root of the mean per-round variance)."""
    out = {}
    rounds = min((len(p["rounds"]) for p in peers), default=0)
    for m in METRICS:
        variances = []
        for r in range(rounds):
            values = [p["rounds"][r].get(m) for p in peers]
            if len(values) >= 2 and all(isinstance(v, int | float) for v in values):
                variances.append(statistics.variance(values))
        if variances:
            out[m] = math.sqrt(statistics.fmean(variances))
    return out


def spread_differences(committed: dict[str, Any], new: dict[str, Any], spread: dict[str, float]) -> list[str]:
    """What a retrain in another environment gets wrong: any structural field, or an accuracy further from
    the record's than ``SIGMAS`` × √2 × the seeds' standard deviation at that round."""
    old_rows, new_rows = committed.get("rounds") or [], new.get("rounds") or []
    out = [] if len(old_rows) == len(new_rows) else [f"rounds: {len(old_rows)} committed rows, {len(new_rows)} "
                                                     "retrained"]
    for i, (a, b) in enumerate(zip(old_rows, new_rows, strict=False)):
        for k in sorted(set(a) | set(b)):
            if (k in STRUCTURE or k.startswith("remaining_pct/")) and a.get(k) != b.get(k):
                out.append(f"rounds[{i}].{k}: committed {a.get(k)!r}, retrained {b.get(k)!r} (must be equal)")
        for m in METRICS:
            if m not in a:
                continue
            if m not in spread:
                out.append(f"rounds[{i}].{m}: no seed spread to compare within (fewer than 2 other seeds)")
                continue
            bound = max(SIGMAS * math.sqrt(2) * spread[m], FLOOR)
            if not abs(b.get(m, math.inf) - a[m]) <= bound:
                out.append(f"rounds[{i}].{m}: committed {a[m]:.4f}, retrained {b.get(m)!r}: differs by more than "
                           f"{bound:.4f} ({SIGMAS:g} × √2 × the seeds' sd {spread[m]:.4f})")
    return out


def compare(committed: dict[str, Any], new: dict[str, Any], peers: Sequence[dict[str, Any]]
            ) -> tuple[str, list[str], list[str]]:
    """(mode, what differs between the environments, what the retrain gets wrong in that mode): ``bit for
    bit`` where the record's environment is the retrain's, else ``within the seed spread`` of ``peers``."""
    envs = ([f"environment: the record was resumed in another environment ({len(committed['environments'])} "
             "environments), so none reproduces it bit for bit"] if run_environment(committed) == "mixed" else
            mismatches(committed.get("environment"), new.get("environment") or {}))
    if not envs:
        return "bit for bit", [], differences(committed, new)
    return "within the seed spread", envs, spread_differences(committed, new, seed_spread(peers))

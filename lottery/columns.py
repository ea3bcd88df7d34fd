"""Names of a round's record that changed, and how a record written under the old ones reads today."""

from __future__ import annotations

from typing import Any

# the names before 0.2 of the round's clock (counts since the round began): records, checkpoints and tables
# that carry them are read under the new names, so older runs resume and gather and older tables plot
LEGACY_COLUMNS = {"best_epoch": "epochs_to_best", "best_step": "steps_to_best"}


def current_names(row: dict[str, Any]) -> dict[str, Any]:
    """A round's record under today's names (``LEGACY_COLUMNS`` renamed; a stacked run's ``members`` too)."""
    out = {LEGACY_COLUMNS.get(k, k): v for k, v in row.items()}
    if isinstance(out.get("members"), list):
        out["members"] = [current_names(m) if isinstance(m, dict) else m for m in out["members"]]
    return out

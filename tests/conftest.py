"""Shared test settings: real-data tests honour $LOTTERY_DATA (``tests.data_fixtures.needs_mnist``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.data_fixtures import REAL_ROOT


@pytest.fixture
def mnist_root(monkeypatch: pytest.MonkeyPatch) -> Path:
    """The real data root, exported as $LOTTERY_DATA for the code under test; skips when MNIST is absent."""
    if not (REAL_ROOT / "MNIST" / "raw").is_dir():
        pytest.skip(f"real MNIST not found under {REAL_ROOT} (set $LOTTERY_DATA)")
    monkeypatch.setenv("LOTTERY_DATA", str(REAL_ROOT))
    return REAL_ROOT

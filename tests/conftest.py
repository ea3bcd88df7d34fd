"""Shared test settings: real-data tests honour $LOTTERY_DATA (``tests.data_fixtures.needs_mnist``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import slurm_cluster as slurm_cluster_lib
from tests.data_fixtures import REAL_ROOT


@pytest.fixture
def mnist_root(monkeypatch: pytest.MonkeyPatch) -> Path:
    """The real data root, exported as $LOTTERY_DATA for the code under test; skips when MNIST is absent."""
    if not (REAL_ROOT / "MNIST" / "raw").is_dir():
        pytest.skip(f"real MNIST not found under {REAL_ROOT} (set $LOTTERY_DATA)")
    monkeypatch.setenv("LOTTERY_DATA", str(REAL_ROOT))
    return REAL_ROOT


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory):
    """A real one-node SLURM cluster for the session (``tests.slurm_cluster``); skips with one line where SLURM
    is not installed or not startable. Stops exactly the daemons it started."""
    why = slurm_cluster_lib.missing()
    if why:
        pytest.skip(why)
    cluster = slurm_cluster_lib.start(tmp_path_factory.mktemp("slurm"))
    try:
        yield cluster
    finally:
        cluster.stop()

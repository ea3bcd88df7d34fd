"""The names a user imports (issue 32): ``from lottery import LotteryTicket, PruneConfig, InitSpec, load_ticket``,
``lottery.__version__``, ``import lottery`` without torch, and config docstrings that say what each field does."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

import lottery
from lottery.callbacks import LotteryTicket
from lottery.config import Config, PruneConfig, TrainConfig
from lottery.export import load_ticket
from lottery.init import InitSpec

REPO = Path(__file__).resolve().parents[1]


def test_the_public_names_are_the_modules_own() -> None:
    assert (lottery.LotteryTicket, lottery.PruneConfig, lottery.InitSpec, lottery.load_ticket) == \
        (LotteryTicket, PruneConfig, InitSpec, load_ticket)
    assert lottery.__version__.count(".") >= 2 and set(lottery.__all__) <= set(dir(lottery))
    for name in lottery.__all__:
        assert getattr(lottery, name) is not None, name
    with pytest.raises(AttributeError, match="module 'lottery' has no attribute 'Nope'"):
        lottery.Nope  # noqa: B018


def test_the_changelog_names_this_version_first() -> None:
    # a release without its changelog entry (or an entry for a version never set) is caught here
    first = next(line for line in (REPO / "CHANGELOG.md").read_text().splitlines() if line.startswith("## "))
    assert first.split()[1] == lottery.__version__, (first, lottery.__version__)


def test_import_lottery_stays_light() -> None:
    code = "import sys, lottery; print('torch' in sys.modules, 'pytorch_lightning' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.split() == \
        ["False", "False"]


@pytest.mark.parametrize("section", [PruneConfig, TrainConfig, Config])
def test_help_on_a_config_section_lists_every_field_with_its_meaning(section: type) -> None:
    doc = section.__doc__ or ""
    help_of = {f.name: f.metadata.get("help", "") for f in dataclasses.fields(section)}
    for name, text in help_of.items():  # sections inside Config have no help of their own: their fields do
        if text:
            assert f"{name} (" in doc and text in doc, name
    assert "rewind (" in (PruneConfig.__doc__ or "") and "threads (" in (TrainConfig.__doc__ or "")

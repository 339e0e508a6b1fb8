"""Fixtures for the deliverability checks: every message kzmail builds for the example campaign.

The helpers behind them (`Example`, `build_all`, `tool`) live in `tests.helpers.deliverability`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.campaigns import copy_project
from tests.helpers.deliverability import ARTIFACTS, Example, build_all


@pytest.fixture(scope="session")
def example(tmp_path_factory: pytest.TempPathFactory) -> Example:
    """Every message of the example campaign, built once for the whole session."""
    root = tmp_path_factory.mktemp("example")
    return build_all(copy_project(root), root / ".kzmail")


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS

"""Fixtures for the deliverability checks: every message kzmail builds for the example campaign.

The independent checkers (SpamAssassin, OpenDKIM, Chromium, the official MJML compiler) are
system tools that `./dev test` installs; a test that needs a missing one fails and says so.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from kzmail.lists.checker import ListChecker
from kzmail.models import Rendered, Subscriber
from kzmail.render.message import Outgoing
from kzmail.services import workspace as app

from ..conftest import REPO

ARTIFACTS = REPO / "test-artifacts"


def tool(name: str, path: str | None = None) -> str:
    """The path of a system tool, or a test failure that says how to install it."""
    found = path if path and Path(path).exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: run scripts/system-deps.sh "
                    "(./dev test does it for you)", pytrace=False)
    return found


@dataclass(frozen=True)
class Built:
    subscriber: Subscriber
    parts: Rendered
    message: Outgoing


@dataclass(frozen=True)
class Example:
    """The example campaign copied to a scratch folder, prepared, built for every subscriber."""

    root: Path
    prepared: app.Prepared
    built: list[Built]


def copy_project(root: Path) -> Path:
    for name in ("campaigns", "templates"):
        shutil.copytree(REPO / name, root / name)
    shutil.copy(REPO / "subscribers.example.csv", root / "subscribers.example.csv")
    return root / "campaigns" / "kasachstan.yaml"


def build_all(campaign: Path, state: Path) -> Example:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KZMAIL_STATE_DIR", str(state))
        prepared = app.prepare(campaign)
    built = []
    with ListChecker(prepared.campaign.subscribers) as checker:
        for item in checker.subscribers():
            parts, message = prepared.render(item)
            built.append(Built(item, parts, message))
    return Example(campaign.parent.parent, prepared, built)


@pytest.fixture(scope="session")
def example(tmp_path_factory: pytest.TempPathFactory) -> Example:
    """Every message of the example campaign, built once for the whole session."""
    root = tmp_path_factory.mktemp("example")
    return build_all(copy_project(root), root / ".kzmail")


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS

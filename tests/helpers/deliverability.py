"""The example campaign built for every subscriber, and the system tools that check it.

The independent checkers (SpamAssassin, OpenDKIM, Chromium, the official MJML compiler) are
system tools that `./dev test` installs; a test that needs a missing one fails and says so.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from kzmail.cli.common import current_workspace
from kzmail.lists.checker import ListChecker
from kzmail.models import Rendered, Subscriber
from kzmail.render.message import Outgoing
from kzmail.services import workspace
from tests.helpers.campaigns import REPO

ARTIFACTS = REPO / "test-artifacts"


def tool(name: str, path: str | None = None) -> str:
    """The path of a system tool, or a test failure that says how to install it."""
    found = path if path and Path(path).exists() else shutil.which(name)
    if not found:
        pytest.fail(
            f"{name} is not installed: run scripts/system-deps.sh (./dev test does it for you)",
            pytrace=False,
        )
    return found


@dataclass(frozen=True)
class Built:
    """One subscriber's message: the rendered parts and the finished bytes."""

    subscriber: Subscriber
    parts: Rendered
    message: Outgoing


@dataclass(frozen=True)
class Example:
    """The example campaign copied to a scratch folder, prepared, built for every subscriber."""

    root: Path
    prepared: workspace.Prepared
    built: list[Built]


def build_all(campaign: Path, state: Path) -> Example:
    """Prepare `campaign` with its state in `state` and build it for every subscriber."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KZMAIL_STATE_DIR", str(state))
        prepared = workspace.prepare(current_workspace(), campaign)
    built = []
    with ListChecker(prepared.campaign.subscribers) as checker:
        for item in checker.subscribers():
            parts, message = prepared.render(item)
            built.append(Built(item, parts, message))
    return Example(campaign.parent.parent, prepared, built)

"""Services use the workspace they are handed: its state folder, environment and clock,
never the process's own (the CLI alone decides those)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kzmail.errors import CampaignError
from kzmail.models import Workspace
from kzmail.services import send, suppressions
from tests.helpers.campaigns import edit_campaign

NINE_NINE = 1_000_000_000.0  # 2001-09-09T01:46:40Z


def test_state_and_clock_come_from_the_workspace(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "from-the-environment"
    monkeypatch.setenv("KZMAIL_STATE_DIR", str(elsewhere))
    ws = Workspace(state=project / "given", root=project, clock=lambda: NINE_NINE)
    (project / "addresses.txt").write_text("x@example.org\n", encoding="utf-8")
    report = suppressions.import_file(ws, project / "addresses.txt", "list.example.org")
    assert report.added == ["x@example.org"]
    [row] = suppressions.rows(ws)
    assert row["unsubscribed_at"] == "2001-09-09T01:46:40+00:00"
    assert (project / "given/state.db").exists()
    assert not elsewhere.exists()


def test_the_relay_password_comes_from_the_workspace_environment(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    campaign = project / "campaigns/kasachstan.yaml"
    edit_campaign(
        campaign,
        lambda text: text.replace("host: local", "host: relay.example.org").replace(
            'username: ""', "username: news"
        ),
    )
    monkeypatch.setenv("KZMAIL_SMTP_PASSWORD", "in the process, not in the workspace")
    ws = Workspace(state=project / ".kzmail", root=project, environ={})
    with pytest.raises(CampaignError, match="KZMAIL_SMTP_PASSWORD is not set"):
        send.send(ws, campaign, confirm=lambda _: False)

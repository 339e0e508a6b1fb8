"""The state belongs to the campaign's project, not to the folder the command runs in."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.campaigns import REPO, use_relay
from tests.helpers.smtp import SmtpServer

KZMAIL = Path(sys.executable).with_name("kzmail")


def _kzmail(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "KZMAIL_STATE_DIR"}
    return subprocess.run(
        [str(KZMAIL), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def news(tmp_path: Path) -> Path:
    """A project folder `news/` (campaigns, templates, list) inside an unrelated parent."""
    project = tmp_path / "parent" / "news"
    for name in ("campaigns", "templates"):
        shutil.copytree(REPO / name, project / name)
    shutil.copy(REPO / "subscribers.example.csv", project / "subscribers.example.csv")
    return project


def test_a_send_from_another_folder_uses_the_projects_state(
    news: Path, smtp_server: SmtpServer
) -> None:
    campaign = news / "campaigns/kasachstan.yaml"
    use_relay(campaign, smtp_server)
    (news / "unsubscribed.txt").write_text("juergen.mueller@example.org\n", encoding="utf-8")
    first = _kzmail(news, "unsubscribes", "import", "unsubscribed.txt", "--trust-from")
    assert first.returncode == 0, first.stderr
    assert "note: new state folder .kzmail for this project" in first.stderr
    sent = _kzmail(news, "send", "campaigns/kasachstan.yaml", "--yes")
    assert sent.returncode == 0, sent.stderr
    delivered = [m.rcpt_tos[0] for m in smtp_server.handler.messages]
    assert len(delivered) == 11
    assert "juergen.mueller@example.org" not in delivered
    parent = news.parent
    again = _kzmail(parent, "send", "news/campaigns/kasachstan.yaml", "--yes")
    assert again.returncode == 0, again.stderr
    assert len(smtp_server.handler.messages) == 11  # nobody mailed twice, the unsubscribe held
    assert not (parent / ".kzmail").exists()
    assert "note: new state folder" not in again.stderr
    status = _kzmail(parent / "news" / "campaigns", "status", "kasachstan.yaml", "--json")
    assert '"sent": 11' in status.stdout, status.stdout + status.stderr


def test_commands_without_a_campaign_say_which_state_they_use(news: Path) -> None:
    (news / ".kzmail").mkdir()
    done = _kzmail(news / "campaigns", "unsubscribes", "list")
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[0] == f"state folder: {news / '.kzmail'}"


def test_kzmail_state_dir_still_overrides(news: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    env = {**os.environ, "KZMAIL_STATE_DIR": str(elsewhere)}
    done = subprocess.run(
        [str(KZMAIL), "preview"], cwd=news, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert (elsewhere / "secret.key").exists()
    assert not (news / ".kzmail").exists()


def test_a_mistyped_campaign_is_one_error_line_and_no_state_note(tmp_path: Path) -> None:
    done = _kzmail(tmp_path, "send", "nope.yaml", "--yes")
    assert done.returncode == 2
    assert done.stderr == "error: nope.yaml: campaign file not found\n"
    assert not (tmp_path / ".kzmail").exists()

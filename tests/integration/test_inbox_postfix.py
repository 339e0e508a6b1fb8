"""Real DSNs from a private Postfix on loopback, read by `kzmail inbox` from the sender's
Maildir: an unknown local user and a domain that does not exist, each suppressed for every
list and matched to its delivery by the Message-ID in the returned headers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kzmail.cli.main import cli
from kzmail.models import ANY_LIST
from kzmail.state.journal import Journal
from tests.helpers.campaigns import edit_campaign
from tests.helpers.postfix_mailbox import MailboxRelay, mailbox_relay, wait_for_messages

SENDER = "newsletter@arbeiterinnenmacht.example.org"
READER = "leserin@example.net"
UNKNOWN = "nobody@example.net"
NO_DOMAIN = "someone@no-such-domain.example.com"
CAMPAIGN = "campaigns/kasachstan.yaml"


@pytest.fixture
def mx() -> Iterator[MailboxRelay]:
    try:
        with mailbox_relay(
            ["example.net", "arbeiterinnenmacht.example.org"], [SENDER, READER]
        ) as relay:
            yield relay
    except RuntimeError as exc:
        pytest.fail(str(exc))


def test_postfix_dsns_suppress_and_mark_bounced(project: Path, mx: MailboxRelay) -> None:
    (project / "real.csv").write_text(f"email,name\n{READER},L\n{UNKNOWN},N\n{NO_DOMAIN},S\n")
    edit_campaign(
        project / CAMPAIGN,
        lambda text: (
            text.replace("host: local", "host: 127.0.0.1")
            .replace("port: 587", f"port: {mx.port}")
            .replace("tls: starttls", "tls: none")
            .replace("subscribers: ../subscribers.example.csv", "subscribers: ../real.csv")
        ),
    )
    runner = CliRunner()
    sent = runner.invoke(cli, ["send", CAMPAIGN, "--yes"])
    assert sent.exit_code == 0, sent.stderr
    wait_for_messages(mx.maildir(READER), 1, 30, mx)
    box = mx.maildir(SENDER)
    wait_for_messages(box, 2, 60, mx)

    result = runner.invoke(cli, ["inbox", str(box), "--json"])

    assert result.exit_code == 0, result.stderr
    found = json.loads(result.stdout)
    rows = {r["address"]: r for m in found["messages"] for r in m["recipients"]}
    assert set(rows) == {UNKNOWN, NO_DOMAIN}, found
    assert rows[UNKNOWN]["status"] == "5.1.1"
    assert all(r["suppress"] and r["campaign"] == "kasachstan" for r in rows.values())
    journal = Journal(project / ".kzmail")
    try:
        for gone in (UNKNOWN, NO_DOMAIN):
            assert journal.suppressed_on(gone) == [ANY_LIST]
            assert journal.status("kasachstan", gone) == "bounced"
        assert journal.status("kasachstan", READER) == "sent"
        assert journal.suppressed_on(READER) == []
    finally:
        journal.close()

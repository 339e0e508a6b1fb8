"""A real Postfix DSN for mail that expired in the queue: the next hop (a real aiosmtpd on
loopback) answers `452 4.2.2` to every try until Postfix's short `maximal_queue_lifetime`
runs out and it returns the message. kzmail must call it soft: counted, never suppressed
on one occurrence, the delivery `bounced`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP
from typer.testing import CliRunner

from kzmail.cli.main import cli
from kzmail.state.journal import Journal
from tests.helpers.campaigns import edit_campaign
from tests.helpers.postfix_mailbox import MailboxRelay, mailbox_relay, wait_for_messages
from tests.helpers.smtp import RecordingHandler, smtp_in_thread

SENDER = "newsletter@arbeiterinnenmacht.example.org"
FULL = "voll@full.example.net"
CAMPAIGN = "campaigns/kasachstan.yaml"
# tried every second or two, given up after 20 s: an expired DSN within the test's time
SHORT_QUEUE = (
    "maximal_queue_lifetime = 20s",
    "bounce_queue_lifetime = 20s",
    "queue_run_delay = 1s",
    "minimal_backoff_time = 1s",
    "maximal_backoff_time = 2s",
    "delay_warning_time = 0h",
)


@pytest.fixture
def full_mailbox() -> Iterator[tuple[RecordingHandler, int]]:
    handler = RecordingHandler(refuse_rcpt={FULL: "452 4.2.2 Mailbox full, try again later"})
    factory = lambda: SMTP(handler, hostname="full.example.net", decode_data=False)  # noqa: E731
    with smtp_in_thread(factory) as port:
        yield handler, port


@pytest.fixture
def mx(full_mailbox: tuple[RecordingHandler, int]) -> Iterator[MailboxRelay]:
    try:
        with mailbox_relay(
            ["arbeiterinnenmacht.example.org"],
            [SENDER],
            transports={"full.example.net": f"smtp:[127.0.0.1]:{full_mailbox[1]}"},
            settings=SHORT_QUEUE,
        ) as relay:
            yield relay
    except RuntimeError as exc:
        pytest.fail(str(exc))


def test_452_until_expiry_is_a_soft_bounce(project: Path, mx: MailboxRelay) -> None:
    (project / "full.csv").write_text(f"email,name\n{FULL},V\n")
    edit_campaign(
        project / CAMPAIGN,
        lambda text: (
            text.replace("host: local", "host: 127.0.0.1")
            .replace("port: 587", f"port: {mx.port}")
            .replace("tls: starttls", "tls: none")
            .replace("subscribers: ../subscribers.example.csv", "subscribers: ../full.csv")
        ),
    )
    runner = CliRunner()
    sent = runner.invoke(cli, ["send", CAMPAIGN, "--yes"])
    assert sent.exit_code == 0, sent.stderr
    box = mx.maildir(SENDER)
    wait_for_messages(box, 1, 90, mx)
    log = mx.log.read_text(errors="replace")
    assert "status=expired" in log, log[-3000:]  # Postfix gave up: not a first-try bounce
    assert log.count("452 4.2.2") >= 2, log[-3000:]  # and it tried more than once

    result = runner.invoke(cli, ["inbox", str(box), "--json"])

    assert result.exit_code == 0, result.stderr
    found = json.loads(result.stdout)
    assert [m["kind"] for m in found["messages"]] == ["bounce"], found
    (row,) = found["messages"][0]["recipients"]
    assert row["address"] == FULL and row["campaign"] == "kasachstan"
    assert row["status"] == "4.2.2" and row["suppress"] is False, row
    assert found["totals"]["soft_counted"] == 1
    journal = Journal(project / ".kzmail")
    try:
        assert journal.suppressed_on(FULL) == []
        assert journal.soft_count(FULL) == 1
        assert journal.status("kasachstan", FULL) == "bounced"
    finally:
        journal.close()

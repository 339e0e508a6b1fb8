"""Sending through a real SMTP server (aiosmtpd on loopback) and through the embedded sink."""

from __future__ import annotations

import email
import email.policy
import mailbox
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from kzmail.cli.common import current_workspace
from kzmail.delivery.engine import Progress
from kzmail.services import send as service_send
from kzmail.state import suppressed
from kzmail.state.journal import DB_FILE, Journal
from tests.helpers.campaigns import edit_campaign, status_on_disk, use_long_list, use_relay
from tests.helpers.smtp import RecordingHandler, SmtpServer, smtp_in_thread

CAMPAIGN = Path("campaigns/kasachstan.yaml")
EXAMPLE_ADDRESSES = 12


def _parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.strict)
    assert isinstance(message, EmailMessage)
    return message


def _parts(message: EmailMessage) -> tuple[str, str]:
    text, html = (p.get_content() for p in message.iter_parts())
    return text, html


def test_one_message_per_subscriber_through_a_real_server(
    project: Path, smtp_server: SmtpServer
) -> None:
    use_relay(project / CAMPAIGN, smtp_server)
    result = service_send.send(current_workspace(), project / CAMPAIGN)
    received = smtp_server.handler.messages
    assert result.report.sent == EXAMPLE_ADDRESSES
    assert result.report.failed == 0
    assert len(received) == EXAMPLE_ADDRESSES
    recipients = [r.rcpt_tos for r in received]
    assert all(len(r) == 1 for r in recipients)  # never a shared envelope
    assert len({r[0] for r in recipients}) == EXAMPLE_ADDRESSES
    signer_ids = set()
    for item in received:
        message = _parse(item.data)
        assert item.mail_from == "newsletter@arbeiterinnenmacht.example.org"
        assert [a.addr_spec for a in message["To"].addresses] == item.rcpt_tos
        assert "Cc" not in message
        assert "Bcc" not in message
        text, html = _parts(message)
        token_url = message["List-Unsubscribe"].split("<")[1].split(">")[0]
        assert token_url.startswith("https://newsletter.arbeiterinnenmacht.example.org/u/")
        assert token_url in text
        assert token_url in html
        assert item.rcpt_tos[0] in text
        signer_ids.add(message["Message-ID"])
    assert len(signer_ids) == EXAMPLE_ADDRESSES


def test_a_second_send_mails_nobody_twice(project: Path, smtp_server: SmtpServer) -> None:
    use_relay(project / CAMPAIGN, smtp_server)
    service_send.send(current_workspace(), project / CAMPAIGN, limit=5)
    assert len(smtp_server.handler.messages) == 5
    result = service_send.send(current_workspace(), project / CAMPAIGN)
    assert result.report.sent == EXAMPLE_ADDRESSES - 5
    assert result.report.skipped == 5
    addresses = [r.rcpt_tos[0] for r in smtp_server.handler.messages]
    assert sorted(addresses) == sorted(set(addresses))
    assert len(addresses) == EXAMPLE_ADDRESSES


def test_refused_recipient_is_recorded_and_others_still_sent(
    project: Path, smtp_server: SmtpServer
) -> None:
    use_relay(project / CAMPAIGN, smtp_server)
    smtp_server.handler.refuse_rcpt["olga.petrova@example.com"] = "550 5.1.1 no such user"
    result = service_send.send(current_workspace(), project / CAMPAIGN)
    assert result.report.sent == EXAMPLE_ADDRESSES - 1
    assert result.report.failed == 1
    assert result.report.failures[0][0] == "olga.petrova@example.com"
    assert "550" in result.report.failures[0][1]
    journal = Journal(project / ".kzmail")
    assert journal.status("kasachstan", "olga.petrova@example.com") == "failed"
    assert journal.counts("kasachstan") == {"sent": EXAMPLE_ADDRESSES - 1, "failed": 1}


def test_suppressed_address_is_never_mailed(project: Path, smtp_server: SmtpServer) -> None:
    use_relay(project / CAMPAIGN, smtp_server)
    journal = Journal(project / ".kzmail")
    journal.suppress(
        "kasachstan.newsletter.arbeiterinnenmacht.example.org",
        "Sophie.Weiss@example.org",
        "unsubscribed",
    )
    journal.close()
    result = service_send.send(current_workspace(), project / CAMPAIGN)
    assert result.plan.summary.suppressed == 1
    assert "sophie.weiss@example.org" not in [r.rcpt_tos[0] for r in smtp_server.handler.messages]
    assert result.report.sent == EXAMPLE_ADDRESSES - 1


def test_dry_run_builds_all_and_sends_none(project: Path, smtp_server: SmtpServer) -> None:
    use_relay(project / CAMPAIGN, smtp_server)
    result = service_send.send(current_workspace(), project / CAMPAIGN, dry_run=True)
    assert result.built == EXAMPLE_ADDRESSES
    assert smtp_server.handler.messages == []


def test_to_sends_exactly_one_real_looking_message(project: Path, smtp_server: SmtpServer) -> None:
    use_relay(project / CAMPAIGN, smtp_server)
    service_send.send(current_workspace(), project / CAMPAIGN, to="me@example.net")
    assert [m.rcpt_tos for m in smtp_server.handler.messages] == [["me@example.net"]]
    message = _parse(smtp_server.handler.messages[0].data)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "me@example.net" in _parts(message)[0]
    # a test message does not count as the campaign's delivery to anyone
    assert (
        service_send.send(current_workspace(), project / CAMPAIGN).report.sent == EXAMPLE_ADDRESSES
    )


def test_embedded_sink_writes_one_maildir_file_per_subscriber(project: Path) -> None:
    result = service_send.send(current_workspace(), project / CAMPAIGN)
    assert result.report.sent == EXAMPLE_ADDRESSES
    box = mailbox.Maildir(project / "outbox/kasachstan", create=False)
    messages = [_parse(box.get_bytes(key)) for key in box.iterkeys()]
    assert len(messages) == EXAMPLE_ADDRESSES
    names = {m["To"].addresses[0].display_name for m in messages}
    assert "Müller, Anna" in names
    assert "Jürgen Müller" in names
    for message in messages:
        text, html = _parts(message)
        name = message["To"].addresses[0].display_name
        if name:
            assert f"Hallo {name}," in text
            assert name.replace("ü", "ü") in html
        assert "/u/" in message["List-Unsubscribe"]
        assert message["Delivered-To"] == message["To"].addresses[0].addr_spec
    # running it again is a fresh rehearsal, not an accumulation
    service_send.send(current_workspace(), project / CAMPAIGN)
    assert len(mailbox.Maildir(project / "outbox/kasachstan", create=False).keys()) == 12


def test_rate_limit_spaces_the_sends(project: Path, smtp_server: SmtpServer) -> None:
    use_relay(project / CAMPAIGN, smtp_server)
    edit_campaign(project / CAMPAIGN, lambda t: t.replace("per_second: 10", "per_second: 4"))
    start = time.monotonic()
    service_send.send(current_workspace(), project / CAMPAIGN, limit=9)
    # 9 sends at 4/s: the first 4 at once, then 4 more after 1 s, the 9th after 2 s
    assert time.monotonic() - start >= 2.0
    assert len(smtp_server.handler.messages) == 9


def test_an_unsubscribe_arriving_mid_send_is_honoured(
    project: Path, smtp_server: SmtpServer
) -> None:
    use_long_list(project / CAMPAIGN, 40)  # longer than the sender reads ahead
    use_relay(project / CAMPAIGN, smtp_server)
    list_id = "kasachstan.newsletter.arbeiterinnenmacht.example.org"
    unsubscribed: list[str] = []

    def on_progress(progress: Progress) -> None:
        if not unsubscribed:  # after the first message: the web page, meanwhile
            other = Journal(project / ".kzmail")
            other.suppress(list_id, "leser39@example.org", "unsubscribed")
            other.close()
            unsubscribed.append(progress.address)
            time.sleep(suppressed.FRESH * 1.5)

    result = service_send.send(current_workspace(), project / CAMPAIGN, on_progress=on_progress)
    addresses = [r.rcpt_tos[0] for r in smtp_server.handler.messages]
    assert unsubscribed and "leser38@example.org" in addresses
    assert "leser39@example.org" not in addresses
    assert result.report.sent == 39


@dataclass
class JournalWatchingHandler(RecordingHandler):
    """Records, as each message arrives (before the relay's 250), its recipient's status
    as a crash at that moment would leave it on disk."""

    state_db: Path = Path()
    on_arrival: list[str | None] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.on_arrival.append(status_on_disk(self.state_db, envelope.rcpt_tos[0]))
        return await super().handle_DATA(server, session, envelope)


@pytest.mark.parametrize("pipelining", [True, False])
def test_sending_is_on_disk_before_any_message_reaches_the_relay(
    project: Path, pipelining: bool
) -> None:
    handler = JournalWatchingHandler(pipelining=pipelining, state_db=project / ".kzmail" / DB_FILE)
    factory = lambda: SMTP(handler, hostname="test.localhost", decode_data=False)  # noqa: E731
    use_long_list(project / CAMPAIGN, 40)
    with smtp_in_thread(factory) as port:
        use_relay(project / CAMPAIGN, SmtpServer("127.0.0.1", port, handler))
        result = service_send.send(current_workspace(), project / CAMPAIGN)
    assert result.report.sent == 40
    assert handler.on_arrival == ["sending"] * 40

"""The example campaign's text part as a relay receives it: plain text a person would write,
wrapped as format=flowed (RFC 3676), without Markdown or the hidden preheader."""

from __future__ import annotations

import email
import email.policy
import re
from email.message import EmailMessage
from pathlib import Path

from typer.testing import CliRunner

from kzmail.campaign_file import load
from kzmail.cli.main import cli
from tests.helpers.campaigns import use_relay
from tests.helpers.flowed import unflow
from tests.helpers.smtp import SmtpServer

CAMPAIGN = "campaigns/kasachstan.yaml"
# a line may pass 78 characters only to keep a URL whole (broken, it is no link)
_LONG_URL = re.compile(r"^<https?://\S+>[).,;]? ?$")


def _text_part(data: bytes) -> tuple[str, EmailMessage]:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    part = message.get_body(("plain",))
    assert isinstance(part, EmailMessage)
    return str(part.get_content()), part


def test_the_sent_text_part_is_flowed_plain_text(project: Path, smtp_server: SmtpServer) -> None:
    use_relay(project / CAMPAIGN, smtp_server)
    result = CliRunner().invoke(cli, ["send", CAMPAIGN, "--yes"])
    assert result.exit_code == 0, result.output
    campaign = load(project / CAMPAIGN)
    article = (project / "campaigns/kasachstan.md").read_text(encoding="utf-8")
    first_paragraph = article.split("\n\n")[0]
    assert len(smtp_server.handler.messages) >= 10
    for received in smtp_server.handler.messages:
        text, part = _text_part(received.data)
        text = text.replace("\r\n", "\n")
        assert part.get_content_type() == "text/plain"
        assert part.get_param("format") == "flowed"
        assert part.get_content_charset() == "utf-8"
        for leak in ("#", "**", "](", "<p", "&amp;"):
            assert leak not in text, leak
        assert campaign.preheader not in unflow(text)
        lines = text.split("\n")
        for line in lines:
            assert len(line) <= 78 or _LONG_URL.match(line), line
        logical = unflow(text)
        # the article's paragraphs come back whole when a client re-flows them
        assert first_paragraph in logical.split("\n")
        assert f"{campaign.article.title}\n{'=' * len(campaign.article.title)}\n" in text
        assert "Zuckerbrot und Peitsche\n-----------------------\n" in text
        assert re.search(r"\nHallo[^\n]*,\n\nSeit Jahresbeginn", text), "greeting"
        link = "Bewegung Kasachstans <http://socialismkz.info/?p=26802>"
        assert link in logical
        for demand in campaign.demands:
            assert f"- {demand}" in logical.split("\n")
        recipient = received.rcpt_tos[0]
        assert f"Diese E-Mail ging an {recipient}." in logical

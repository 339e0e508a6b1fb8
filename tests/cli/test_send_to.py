"""`kzmail send --to`: a test message to one address, through the real CLI and a real relay."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from pathlib import Path

from typer.testing import CliRunner

from kzmail.cli.main import cli
from tests.helpers.campaigns import edit_campaign, use_relay
from tests.helpers.smtp import SmtpServer

CAMPAIGN = "campaigns/kasachstan.yaml"
TEMPLATE = "templates/newsletter.mjml"
runner = CliRunner()


def kz(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def _text(data: bytes) -> str:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def use_city(project: Path) -> None:
    """Make the template use the list's `city` column (the example list has one)."""
    edit_campaign(
        project / TEMPLATE,
        lambda t: t.replace(
            '<p><a href="{{ unsubscribe_url }}">',
            '<p>Wohnort: {{ subscriber.city }}.</p><p><a href="{{ unsubscribe_url }}">',
        ),
    )


def test_to_an_address_not_in_the_list_takes_a_row_as_sample_data(
    project: Path, smtp_server: SmtpServer
) -> None:
    use_relay(project / CAMPAIGN, smtp_server)
    use_city(project)
    assert kz("check", CAMPAIGN)[0] == 0
    code, out, err = kz("send", CAMPAIGN, "--to", "me@example.net", "--yes")
    assert code == 0, err
    assert (
        "note: --to me@example.net is not in the list: the message uses row 2's fields "
        "(city) as sample data, and no name" in out
    )
    assert [m.rcpt_tos for m in smtp_server.handler.messages] == [["me@example.net"]]
    text = _text(smtp_server.handler.messages[0].data)
    assert "Diese E-Mail ging an me@example.net." in text
    assert "Wohnort: Berlin." in text  # row 2 is in Berlin
    assert "Hallo," in text  # no subscriber's name beside the tester's address


def test_to_an_address_in_the_list_uses_its_own_row_and_says_nothing(
    project: Path, smtp_server: SmtpServer
) -> None:
    use_relay(project / CAMPAIGN, smtp_server)
    use_city(project)
    code, out, err = kz("send", CAMPAIGN, "--to", "ayse.yilmaz@example.net", "--yes")
    assert code == 0, err
    assert "note:" not in out
    text = _text(smtp_server.handler.messages[0].data)
    assert "Diese E-Mail ging an ayse.yilmaz@example.net." in text
    assert "Wohnort: Köln." in text
    assert "Hallo Ayşe Yılmaz," in text


def test_to_a_special_use_name_is_a_test_message_with_a_note(
    project: Path, smtp_server: SmtpServer
) -> None:
    use_relay(project / CAMPAIGN, smtp_server)
    for address, rule in (
        ("you@localhost", "localhost is the loopback name (RFC 6761 section 6.3)"),
        ("you@news.example.test", ".test is reserved for testing (RFC 6761 section 6.2)"),
        ("you@x.invalid", ".invalid is reserved as never valid (RFC 6761 section 6.4)"),
    ):
        code, out, err = kz("send", CAMPAIGN, "--to", address, "--yes")
        assert code == 0, err
        assert f"note: --to {address} is accepted for a test message because {rule}" in out
        assert smtp_server.handler.messages[-1].rcpt_tos == [address]
        assert f"To: {address}" in smtp_server.handler.messages[-1].data.decode()
    assert len(smtp_server.handler.messages) == 3
    # an ordinary address gets no such note, and a name that is no name is still refused
    assert (
        "accepted for a test message"
        not in kz("send", CAMPAIGN, "--to", "me@example.net", "--dry-run")[1]
    )
    code, _, err = kz("send", CAMPAIGN, "--to", "you@-x.test", "--dry-run")
    assert code == 2
    assert "--to: invalid address 'you@-x.test'" in err


def test_a_list_still_refuses_special_use_names(project: Path) -> None:
    with (project / "subscribers.example.csv").open("a", encoding="utf-8") as rows:
        rows.write("me@localhost,Me,Berlin\nyou@news.example.test,You,Köln\n")
    code, out, err = kz("check", CAMPAIGN)
    assert code == 0, err
    assert "14 rows: 12 valid, 2 invalid" in out
    assert "subscribers.example.csv:14: invalid address 'me@localhost'" in out + err
    assert "subscribers.example.csv:15: invalid address 'you@news.example.test'" in out + err

"""No address with a line break passes, and no name smuggles a control character."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from kzmail import campaign_file as campaign
from kzmail.errors import UnsafeAddressError
from kzmail.lists.rows import AddressChecker, find_columns, parse_row
from kzmail.models import Rendered, Subscriber
from kzmail.render.message import MessageFactory, mailbox_header, safe_address

# Hostile characters in names and addresses never reach a header; long names are tested in
# test_message.py.

URL = "https://news.example.org/u/abc.def"
PARTS = Rendered.of(html="<p>Hallo</p>", text="Hallo\n")
# the hostile characters: line breaks, NUL, separators, NEL, bidi overrides/isolates
HOSTILE = [
    "\r",
    "\n",
    "\x00",
    "\x1b",
    "\u2028",
    "\u2029",
    "\x85",
    "\x9b",
    *(chr(c) for c in range(0x202A, 0x202F)),
    *(chr(c) for c in range(0x2066, 0x206A)),
]


@pytest.fixture
def factory(project: Path) -> MessageFactory:
    c = campaign.load(project / "campaigns/kasachstan.yaml")
    return MessageFactory(c, mailto=c.unsubscribe.mailto)


def _parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.strict)
    assert isinstance(message, EmailMessage)
    return message


@pytest.mark.parametrize("address", ["a@example.org\n", "a@example.org\r\n", "a@example.org\r"])
def test_a_trailing_line_break_is_not_an_address(address: str) -> None:
    with pytest.raises(UnsafeAddressError):
        safe_address(address)
    with pytest.raises(UnsafeAddressError):
        mailbox_header("Eve", address)
    with pytest.raises(UnsafeAddressError):
        mailbox_header("", address)


@pytest.mark.parametrize("char", HOSTILE)
def test_control_characters_never_reach_the_to_header(factory: MessageFactory, char: str) -> None:
    name = f"Eve{char}Bcc: x@example.net{char}Mallory"
    out = factory.build(Subscriber("a@example.org", name), PARTS, URL)
    display = _parse(out.data)["To"].addresses[0].display_name
    assert char not in display
    assert "Eve" in display
    assert "Mallory" in display


@pytest.mark.parametrize("char", HOSTILE)
def test_an_address_cell_with_a_control_character_is_refused_as_such(char: str) -> None:
    rows = iter([(1, ["email", "name"])])
    columns = find_columns(rows, Path("list.csv"))
    problem = parse_row(
        columns, "list.csv", 2, [f"an{char}na@example.org", "Anna"], AddressChecker()
    )
    assert not isinstance(problem, Subscriber)
    assert problem is not None and "line break or control character" in problem.reason


@pytest.mark.parametrize("char", HOSTILE)
def test_control_characters_are_removed_from_names_in_a_list(char: str) -> None:
    rows = iter([(1, ["email", "name", "first", "last", "city"])])
    columns = find_columns(rows, Path("list.csv"))
    checker = AddressChecker()
    person = parse_row(
        columns, "list.csv", 2, ["a@example.org", f"Ann{char}a", "", "", f"K{char}öln"], checker
    )
    assert isinstance(person, Subscriber)
    assert char not in person.name and person.name.startswith("Ann")
    assert char not in person.fields["city"]
    by_parts = parse_row(
        columns,
        "list.csv",
        3,
        ["b@example.org", "", f"An{char}na", f"{char}Meier{char}", ""],
        checker,
    )
    assert isinstance(by_parts, Subscriber)
    assert char not in by_parts.name
    shown = parse_row(
        columns, "list.csv", 4, [f"Bo{char}b <b@example.org>", "", "", "", ""], checker
    )
    assert not isinstance(shown, Subscriber) or char not in shown.name

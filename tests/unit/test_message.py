"""MIME assembly: strict parsing, encoded headers, and no way to inject a header or recipient."""

from __future__ import annotations

import email
import email.policy
import re
from email.header import decode_header, make_header
from pathlib import Path

import pytest

from kzmail import campaign_file as campaign
from kzmail.cli.common import current_workspace
from kzmail.dkim.signer import relaxed_piece
from kzmail.errors import UnsafeAddressError
from kzmail.models import Rendered, Subscriber
from kzmail.render.message import (
    ChunkEncoder,
    MessageFactory,
    mailbox_header,
    qp_piece,
)

URL = "https://news.example.org/u/abc.def"
PARTS = Rendered.of(
    html="<p>Hallo Jürgen</p>" + "<p>x</p>" * 2000, text="Hallo Jürgen\n" + "y " * 3000
)


@pytest.fixture
def factory(project: Path) -> MessageFactory:
    c = campaign.load(project / "campaigns/kasachstan.yaml")
    return MessageFactory(c, mailto=c.unsubscribe.mailto)


def _parse(data: bytes) -> email.message.EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.strict)
    assert isinstance(message, email.message.EmailMessage)
    return message


def test_message_parses_strictly_with_every_list_header(factory: MessageFactory) -> None:
    out = factory.build(Subscriber("juergen@example.org", "Jürgen Müller"), PARTS, URL)
    msg = _parse(out.data)
    assert not msg.defects
    assert all(not part.defects for part in msg.walk())
    assert str(make_header(decode_header(msg["Subject"]))) == (
        "Solidarität mit den Arbeiter_Innen und Jugendlichen in Kasachstan!"
    )
    assert b"Subject: =?utf-8?" in out.data
    assert msg["To"] == "Jürgen Müller <juergen@example.org>"
    assert msg["Date"] is not None
    assert msg["Message-ID"] == out.message_id
    assert msg["List-Id"].endswith("<kasachstan.newsletter.arbeiterinnenmacht.example.org>")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = msg["List-Unsubscribe"]
    assert f"<{URL}>" in unsubscribe
    token = URL.rpartition("/u/")[2]
    assert (
        f"<mailto:abmelden@arbeiterinnenmacht.example.org?subject=unsubscribe%20{token}>"
        in unsubscribe
    )
    assert msg.get_content_type() == "multipart/alternative"
    text, html = [part.get_content().replace("\r\n", "\n") for part in msg.iter_parts()]
    assert text == PARTS.text
    assert html == PARTS.html
    assert "Cc" not in msg
    assert "Bcc" not in msg
    assert max(len(line) for line in out.data.split(b"\r\n")) <= 998
    assert b"\n" not in out.data.replace(b"\r\n", b"")


def test_message_ids_are_unique(factory: MessageFactory) -> None:
    ids = {
        factory.build(Subscriber(f"p{i}@example.org"), PARTS, URL).message_id for i in range(2000)
    }
    assert len(ids) == 2000


def test_display_name_with_comma_and_quotes_is_one_mailbox(factory: MessageFactory) -> None:
    out = factory.build(Subscriber("anna@example.org", 'Müller, "Anna"'), PARTS, URL)
    to = _parse(out.data)["To"]
    assert len(to.addresses) == 1
    assert to.addresses[0].addr_spec == "anna@example.org"
    assert to.addresses[0].display_name == 'Müller, "Anna"'


def test_crlf_in_name_cannot_inject_a_header(factory: MessageFactory) -> None:
    evil = Subscriber("a@example.org", "Eve\r\nBcc: victim@example.net\r\nX-Evil: 1")
    msg = _parse(factory.build(evil, PARTS, URL).data)
    assert "Bcc" not in msg
    assert "X-Evil" not in msg
    assert len(msg["To"].addresses) == 1
    assert msg["To"].addresses[0].addr_spec == "a@example.org"


@pytest.mark.parametrize(
    "address",
    [
        "a@example.org, b@example.net",
        "a@example.org\r\nBcc: b@example.net",
        "Eve <a@example.org>",
        "a@example.org>,<b@example.net",
        "a..b@example.org",
        ".a@example.org",
        "a@local",  # one label: only localhost (a test message's --to) may be one
        "a@localhost.",
        "a@-x.example.org",
        "a@example..org",
    ],
)
def test_unsafe_addresses_are_refused(address: str) -> None:
    with pytest.raises(UnsafeAddressError):
        mailbox_header("Eve", address)


def test_plain_addresses_pass_as_they_are() -> None:
    # a@localhost: `send --to` may go there; lists refuse it before any header is built
    for address in ("a+news@xn--mller-kva.example", "o'neil.x@sub-1.example.org", "a@localhost"):
        assert mailbox_header("", address) == address


def test_ascii_name_with_specials_is_quoted() -> None:
    assert mailbox_header("Doe, John", "j@example.org") == '"Doe, John" <j@example.org>'
    assert mailbox_header("", "j@example.org") == "j@example.org"


def test_chunked_encoding_decodes_to_exactly_the_rendered_parts(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kzmail.render import message as message_module
    from kzmail.services import workspace

    prepared = workspace.prepare(current_workspace(), project / "campaigns/kasachstan.yaml")
    person = Subscriber("anna@example.org", "Müller, Anna  ", {"city": "Köln"})
    encoded: list[str] = []
    real = message_module.qp_piece

    def counting(chunk: str) -> bytes:
        encoded.append(chunk)
        return real(chunk)

    monkeypatch.setattr(message_module, "qp_piece", counting)
    parts, out = prepared.render(person)
    msg = _parse(out.data)
    text, html = [p.get_content().replace("\r\n", "\n") for p in msg.iter_parts()]
    assert text == parts.text
    assert html == parts.html
    body = out.data.split(b"\r\n\r\n", 1)[1]
    assert max(len(line) for line in body.split(b"\r\n")) <= 76
    # only the per-subscriber chunks were encoded now; the static text was encoded once
    assert sum(len(c) for c in encoded) < len(parts.html) / 20
    assert any("Müller, Anna" in c for c in encoded)


def test_piecewise_dkim_body_hash_equals_the_whole_body_one(project: Path, tmp_path: Path) -> None:
    import re

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from kzmail.dkim import signer as dkim
    from kzmail.services import workspace
    from tests.helpers.campaigns import edit_campaign

    key = ed25519.Ed25519PrivateKey.generate()
    (project / "k.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    edit_campaign(
        project / "campaigns/kasachstan.yaml",
        lambda t: (
            t
            + (
                "\ndkim:\n  domain: arbeiterinnenmacht.example.org\n  selector: s\n"
                "  key_file: ../k.pem\n"
            )
        ),
    )
    prepared = workspace.prepare(current_workspace(), project / "campaigns/kasachstan.yaml")
    # names with runs of spaces and tabs: the per-subscriber chunks need canonicalising too
    for name in ("Anna", "Anna  \t  Müller", "x   y"):
        data = prepared.build(Subscriber("a@example.org", name, {"city": "a  b"})).data
        bh = re.search(rb"bh=([^;]+);", data.replace(b"\r\n ", b""))
        assert bh is not None
        body = data.split(b"\r\n\r\n", 1)[1]
        assert bh.group(1).decode() == dkim.body_hash(dkim.relaxed_body(body))


def test_chunks_remembered_by_value_encode_exactly_as_fresh_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from markupsafe import Markup

    from kzmail.render import message as message_module

    static = ["<p>fixed text</p>\n"]
    encoder = ChunkEncoder(static, canonical=True, recent=2)
    demand = "Nein zur Intervention! Stopp aller Waffenlieferungen. " * 3
    # a campaign value comes out of each render as a new object (escaped for HTML); personal
    # values are new every time and push the remembered ones out (recent=2)
    for i in range(5):
        chunks = (static[0], Markup(demand), f"Leser {i} <x{i}@example.org>.\n", Markup(demand))
        canonical: list[bytes] = []
        encoded = encoder.encode(chunks, canonical)
        expected = [qp_piece(c) for c in chunks]
        assert encoded == b"".join(expected)
        assert canonical == [relaxed_piece(e) for e in expected]
    # it remembers at most `recent` (2) values: of three told apart, at least one is
    # forgotten by the time they come round again, and encoded afresh
    fresh: list[str] = []
    real = message_module.qp_piece

    def counting(chunk: str) -> bytes:
        fresh.append(chunk)
        return real(chunk)

    monkeypatch.setattr(message_module, "qp_piece", counting)
    values = ("Eins.\n", "Zwei.\n", "Drei.\n")
    for value in values * 2:
        encoder.encode((value,))
    assert fresh[:3] == list(values)
    assert len(fresh) > 3


def test_an_address_with_a_final_newline_is_refused() -> None:
    with pytest.raises(UnsafeAddressError):
        mailbox_header("Eve", "a@example.org\n")


@pytest.mark.parametrize("control", ["\u2028", "\u2029", "\u0085", "\u202e", "\u2066", "\x00"])
def test_control_and_bidi_characters_leave_names(control: str) -> None:
    header = mailbox_header(f"Eve{control}lyn", "a@example.org")
    decoded = str(make_header(decode_header(header)))
    assert control not in decoded
    assert decoded.startswith("Eve lyn")


@pytest.mark.parametrize("name", ["😀" * 200, "ä" * 200, "=?" + "x" * 198])
def test_a_long_name_is_folded_into_short_encoded_words(factory: MessageFactory, name: str) -> None:
    out = factory.build(Subscriber("anna@example.org", name), PARTS, URL)
    head = out.data.split(b"\r\n\r\n", 1)[0]
    assert max(len(line) for line in out.data.split(b"\r\n")) <= 998
    assert max(len(line) for line in head.split(b"\r\n")) <= 998
    words = re.findall(rb"=\?[^?]+\?[bqBQ]\?[^?]*\?=", head)
    assert words
    assert max(len(word) for word in words) <= 75
    # RFC 2047 section 6.2: the space between two encoded words is not part of the text
    # (the stdlib's address parser keeps it, so decode the raw header the way clients do)
    raw_to = email.message_from_bytes(out.data, policy=email.policy.compat32)["To"]
    assert str(make_header(decode_header(raw_to))) == f"{name} <anna@example.org>"

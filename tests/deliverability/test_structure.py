"""Structure: every message parses under `email.policy.strict`, keeps lines <= 998 octets and
to 7-bit-safe encodings, encodes subject and names by RFC 2047, has a sane Date, a unique
Message-ID (10,000 messages), and a text part that reads like the HTML (same links, demands)."""

from __future__ import annotations

import email
import email.policy
import html
import re
import time
from datetime import UTC, datetime
from email.errors import MessageDefect
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.utils import parsedate_to_datetime

import pytest

from kzmail.models import Rendered, Subscriber
from kzmail.render.message import MessageFactory
from tests.helpers.broken import drop_header, html_only, parse, rebuilt
from tests.helpers.deliverability import Example

TRICKY_NAMES = [
    "Jürgen Müller",
    "Müller, Anna",
    'Anna "Nanni" Meier',
    "O'Brien; Seán",
    "Ayşe Yılmaz",
    "Ωμέγα Λάμδα",
    "a,b <c@d.example>",
    "=?utf-8?q?not_really?=",
    "Sehr langer Name mit Umlauten äöü " * 4,
]


def strict_problems(data: bytes) -> list[str]:
    """Defects the standard library finds with `policy.strict` (raise on every defect)."""
    try:
        message = email.message_from_bytes(data, policy=email.policy.strict)
        for part in message.walk():
            for name, value in part.items():
                str(value)  # header parsing happens (and raises) here
                if value.defects:
                    return [f"{name}: {value.defects}"]
            if part.defects:
                return [f"{part.get_content_type()}: {part.defects}"]
            if not part.is_multipart():
                part.get_content()
    except (MessageDefect, ValueError, LookupError) as exc:
        return [f"{type(exc).__name__}: {exc}"]
    return []


def line_problems(data: bytes) -> list[str]:
    """RFC 5322: lines <= 998 octets, CRLF only; 7-bit bytes only (8-bit safe encodings)."""
    problems = []
    lines = data.split(b"\r\n")
    if any(b"\n" in line or b"\r" in line for line in lines):
        problems.append("bare CR or LF")
    longest = max(len(line) for line in lines)
    if longest > 998:
        problems.append(f"line of {longest} octets")
    if any(byte > 127 for byte in data):
        problems.append("8-bit bytes (not every relay carries them)")
    return problems


def address_problems(data: bytes, address: str, name: str) -> list[str]:
    """The header block is 7-bit (RFC 2047 for anything else) and To reads back as exactly
    the one recipient, with the name as written."""
    head = data.split(b"\r\n\r\n", 1)[0]
    if any(byte > 127 for byte in head):
        return ["raw 8-bit bytes in the header"]
    to = parse(data)["To"].addresses
    if len(to) != 1:
        return [f"To holds {len(to)} addresses: {to}"]
    if to[0].addr_spec != address or (
        to[0].display_name != name.strip() and rfc2047_to(data) != f"{name.strip()} <{address}>"
    ):
        return [f"To reads back as {to[0].display_name!r} <{to[0].addr_spec}>"]
    return []


def rfc2047_to(data: bytes) -> str:
    """To as RFC 2047 section 6.2 decodes it: the space between two encoded words of a
    folded name is not text (the stdlib's address parser keeps it; mail clients do not)."""
    raw = email.message_from_bytes(data, policy=email.policy.compat32)["To"]
    return str(make_header(decode_header(raw)))


def date_problems(message: EmailMessage, now: datetime) -> list[str]:
    raw = message.get("Date")
    if raw is None:
        return ["no Date"]
    try:
        when = parsedate_to_datetime(str(raw))
    except (TypeError, ValueError):
        return [f"unparsable Date {raw!r}"]
    if when.tzinfo is None:
        return [f"Date without time zone {raw!r}"]
    if abs((when - now).total_seconds()) > 300:
        return [f"Date {raw} is not now"]
    return []


def message_id_problems(ids: list[str], domain: str) -> list[str]:
    problems = [
        f"malformed Message-ID {i}"
        for i in ids
        if not re.fullmatch(r"<[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@" + re.escape(domain) + ">", i)
    ]
    duplicates = len(ids) - len(set(ids))
    if duplicates:
        problems.append(f"{duplicates} duplicate Message-IDs")
    return problems


_HREF = re.compile(r'<a\s[^>]*href="([^"]+)"', re.IGNORECASE)
_TEXT_URL = re.compile(r"(?:https?|mailto):[^\s)\]>]+")


def _visible_text(markup: str) -> str:
    text = re.sub(r"<[^>]+>", " ", markup)
    return re.sub(r"\s+", " ", html.unescape(text)).strip()


def text_part_problems(message: EmailMessage, demands: list[str]) -> list[str]:
    """The text part must carry the same links and the same demands as the HTML part."""
    html_part = message.get_body(("html",))
    text_part = message.get_body(("plain",))
    if html_part is None or text_part is None:
        return ["not multipart/alternative with text and HTML"]
    markup, text = html_part.get_content(), text_part.get_content()
    problems = []
    html_links = {html.unescape(h) for h in _HREF.findall(markup)}
    text_links = set(_TEXT_URL.findall(text))
    if html_links - text_links:
        problems.append(f"links missing from the text part: {sorted(html_links - text_links)}")
    if text_links - html_links:
        problems.append(f"links only in the text part: {sorted(text_links - html_links)}")
    flat_text = re.sub(r"\s+", " ", text)
    for demand in demands:
        if demand not in _visible_text(markup):
            problems.append(f"demand missing from the HTML: {demand[:40]}")
        if demand not in flat_text:
            problems.append(f"demand missing from the text part: {demand[:40]}")
    return problems


# --- the example campaign passes every check ------------------------------------------------


def test_every_message_parses_strictly_without_defects(example: Example) -> None:
    for built in example.built:
        assert strict_problems(built.message.data) == [], built.subscriber.email


def test_lines_and_encodings(example: Example) -> None:
    for built in example.built:
        assert line_problems(built.message.data) == [], built.subscriber.email
        message = parse(built.message.data)
        for part in message.walk():
            if not part.is_multipart():
                assert part["Content-Transfer-Encoding"] == "quoted-printable"
                assert part.get_content_charset() == "utf-8"


def test_subject_from_and_to_are_rfc2047_and_read_back_exactly(example: Example) -> None:
    campaign = example.prepared.campaign
    for built in example.built:
        message = parse(built.message.data)
        assert str(message["Subject"]) == campaign.subject
        assert "=?utf-8?" in built.message.data.split(b"\r\n\r\n")[0].decode("ascii")
        assert (
            address_problems(built.message.data, built.subscriber.email, built.subscriber.name)
            == []
        )


@pytest.mark.parametrize("name", TRICKY_NAMES)
def test_tricky_display_names_survive(example: Example, name: str) -> None:
    built = example.built[0]
    person = Subscriber("tricky@example.org", name)
    data = example.prepared.factory.build(person, built.parts, "https://n.example/u/t").data
    assert strict_problems(data) == []
    assert line_problems(data) == []
    assert address_problems(data, "tricky@example.org", name) == []


@pytest.mark.parametrize(
    "subject",
    ['Solidarität, „Brot“ & "Frieden" – jetzt! ' * 3, "Plain ASCII subject, with a comma"],
)
@pytest.mark.parametrize(
    "sender",
    ['"Gruppe ArbeiterInnenmacht, Berlin" <n@example.org>', "Grüne Jugend Köln <n@example.org>"],
)
def test_tricky_subject_and_sender_survive(example: Example, subject: str, sender: str) -> None:
    campaign = example.prepared.campaign.model_copy(update={"subject": subject, "from_": sender})
    built = example.built[0]
    data = MessageFactory(campaign).build(built.subscriber, built.parts, "https://n.example/u").data
    assert strict_problems(data) == []
    assert line_problems(data) == []
    message = parse(data)
    assert str(message["Subject"]) == subject
    sender_read = message["From"].addresses
    assert len(sender_read) == 1
    assert sender_read[0].addr_spec == "n@example.org"
    assert sender_read[0].display_name in sender


def test_date_is_present_and_sane(example: Example) -> None:
    now = datetime.now(UTC)
    for built in example.built:
        assert date_problems(parse(built.message.data), now) == []


def test_message_ids_unique_over_10000_messages(example: Example) -> None:
    factory, built = example.prepared.factory, example.built[0]
    domain = factory.envelope_from.rpartition("@")[2]
    short = Rendered.of(html="<p>x</p>", text="x")  # the id does not depend on the body
    ids = [
        factory.build(Subscriber(f"r{i}@example.org"), short, "https://n.example/u").message_id
        for i in range(10_000)
    ]
    assert message_id_problems(ids, domain) == []
    # and the header carries exactly that id
    assert parse(built.message.data)["Message-ID"] == built.message.message_id


def test_text_part_has_the_same_links_and_demands(example: Example) -> None:
    demands = list(example.prepared.campaign.demands)
    for built in example.built:
        message = parse(built.message.data)
        assert text_part_problems(message, demands) == [], built.subscriber.email
        assert "/u/" in str(message["List-Unsubscribe"])


# --- and each check fails on a deliberately broken message ----------------------------------


def test_strict_check_catches_a_truncated_message(example: Example) -> None:
    data = example.built[0].message.data
    truncated = data[: data.rindex(b"\r\n--")] + b"\r\n"  # no closing boundary
    assert strict_problems(truncated)
    assert strict_problems(data.replace(b"\r\nTo: ", b"\r\nTo: <<broken@@\r\nX-Was: ", 1))


def test_line_check_catches_raw_8bit_html_on_one_line(example: Example) -> None:
    built = example.built[0]
    head = parse(built.message.data)
    naive = EmailMessage()
    naive["Subject"] = str(head["Subject"])
    naive.set_content(built.parts.html.replace("\n", " "), subtype="html", cte="8bit")
    problems = line_problems(naive.as_bytes(policy=email.policy.SMTPUTF8.clone(max_line_length=0)))
    assert any("octets" in p for p in problems)
    assert any("8-bit" in p for p in problems)


@pytest.mark.parametrize(
    "raw",
    [
        "To: Müller, Anna <anna@example.org>",  # raw 8-bit, comma splits it in two
        'To: "Müller, Anna" <anna@example.org>, b@example.org',  # a second recipient
        "To: =?utf-8?q?M=C3=BCller?= Anna <other@example.org>",  # the wrong address
    ],
)
def test_name_check_catches_naive_to_headers(example: Example, raw: str) -> None:
    data = example.built[0].message.data
    head, body = data.split(b"\r\n\r\n", 1)
    head = re.sub(rb"(?m)^To: [^\r\n]*(\r\n[ \t][^\r\n]*)*", raw.encode("utf-8"), head)
    broken = head + b"\r\n\r\n" + body
    assert address_problems(broken, "anna@example.org", "Müller, Anna")
    assert address_problems(
        broken.replace("Müller".encode(), b"Mueller"), "anna@example.org", "Mueller, Anna"
    )


def test_date_check_catches_missing_and_wrong_dates(example: Example) -> None:
    data = example.built[0].message.data
    now = datetime.now(UTC)
    assert date_problems(parse(drop_header(data, "Date")), now) == ["no Date"]
    old = re.sub(rb"(?m)^Date: [^\r\n]*", b"Date: Thu, 01 Jan 1970 00:00:00 +0000", data)
    assert date_problems(parse(old), now)
    naive = re.sub(rb"(?m)^Date: [^\r\n]*", b"Date: next tuesday", data)
    assert date_problems(parse(naive), now)


def test_message_id_check_catches_clock_based_ids(example: Example) -> None:
    class SecondsFactory(MessageFactory):
        def message_id(self) -> str:  # what naive senders do: the time in seconds
            return f"<{int(time.time())}@arbeiterinnenmacht.example.org>"

    factory = SecondsFactory(example.prepared.campaign)
    built = example.built[0]
    ids = [
        factory.build(built.subscriber, built.parts, "https://n.example/u").message_id
        for _ in range(100)
    ]
    assert any("duplicate" in p for p in message_id_problems(ids, "arbeiterinnenmacht.example.org"))
    assert message_id_problems(["<no-domain>"], "arbeiterinnenmacht.example.org")


def test_text_part_check_catches_an_unfaithful_text_part(example: Example) -> None:
    factory, built = example.prepared.factory, example.built[0]
    demands = list(example.prepared.campaign.demands)
    view_html = rebuilt(factory, built, text="Bitte die HTML-Version ansehen.\n")
    assert any("links missing" in p for p in text_part_problems(parse(view_html), demands))
    assert any(
        "demand missing from the text" in p for p in text_part_problems(parse(view_html), demands)
    )
    first_link = _TEXT_URL.findall(built.parts.text)[0]
    dropped = rebuilt(factory, built, text=built.parts.text.replace(first_link, "(entfernt)"))
    assert text_part_problems(parse(dropped), demands)
    assert text_part_problems(parse(html_only(built.message.data)), demands)

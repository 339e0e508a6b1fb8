"""Deliberately broken variants of a good kzmail message, one classic mistake each.

Each check in tests/deliverability is shown to fail on one of these, so a check that cannot
fail is noticed.
"""

from __future__ import annotations

import email
import re
from email.message import EmailMessage
from email.policy import SMTP, default

from kzmail.models import Rendered
from kzmail.render.message import MessageFactory
from tests.helpers.deliverability import Built


def drop_header(data: bytes, name: str) -> bytes:
    """The message without header `name` (with its folded continuation lines)."""
    head, sep, body = data.partition(b"\r\n\r\n")
    pattern = re.compile(
        rb"(?im)^" + re.escape(name.encode()) + rb":[^\r\n]*(\r\n[ \t][^\r\n]*)*\r\n"
    )
    out = pattern.sub(b"", head + b"\r\n", count=1)
    assert out != head + b"\r\n", f"{name} not found"
    return out.rstrip(b"\r\n") + sep + body


def add_header(data: bytes, line: str) -> bytes:
    return line.encode("utf-8") + b"\r\n" + data


def parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=default)
    assert isinstance(message, EmailMessage)
    return message


def html_only(data: bytes) -> bytes:
    """The same message with the text/plain alternative left out."""
    message = parse(data)
    html = message.get_body(("html",))
    assert html is not None
    content = html.get_content()
    message.clear_content()
    message.set_content(content, subtype="html", cte="quoted-printable")
    return message.as_bytes(policy=SMTP)


def rebuilt(
    factory: MessageFactory,
    built: Built,
    *,
    html: str | None = None,
    text: str | None = None,
    url: str = "https://news.example.org/u/t",
) -> bytes:
    """Rebuilt by kzmail's own factory from parts a broken template might have produced."""
    parts = Rendered.of(
        html=built.parts.html if html is None else html,
        text=built.parts.text if text is None else text,
    )
    return factory.build(built.subscriber, parts, url).data

"""Assemble the MIME bytes of one personalised message, fast.

`MessageFactory` is built once per campaign: it folds and encodes the headers every
message shares (From, Subject, List-Id, ...) with the standard library, once. Per
subscriber it only adds To, Date, Message-ID and List-Unsubscribe and encodes the two
personalised bodies (quoted-printable, C speed): no `EmailMessage` per subscriber.
"""

from __future__ import annotations

import binascii
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr, parseaddr

from .models import Campaign, Rendered, Subscriber

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_SAFE_ADDR = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+$")


class UnsafeAddressError(ValueError):
    """An address that could smuggle a header or a second recipient."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message ready for the relay: envelope and bytes."""

    recipient: str
    message_id: str
    data: bytes
    # CRLF lines only and none starting with ".": the bytes can go to DATA as they are
    # (whoever rewrites `data`, e.g. to sign it, must keep that true or reset the flag)
    wire_safe: bool = False


def _qp(text: str) -> bytes:
    encoded = binascii.b2a_qp(text.encode("utf-8"), quotetabs=False, istext=True, header=False)
    return encoded.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _qp_line(line: str) -> bytes:
    encoded = binascii.b2a_qp(line.encode("utf-8"), quotetabs=False, istext=True, header=False)
    if b"." in encoded:
        encoded = b"\n".join(_undot(piece) for piece in encoded.split(b"\n"))
    return encoded.replace(b"\n", b"\r\n")


def _undot(piece: bytes) -> bytes:
    """A QP line that starts with "." gets it encoded, so DATA needs no dot-stuffing:
    `=2E` in place when the line stays within 76 characters, else `=2E` and a soft break."""
    if not piece.startswith(b"."):
        return piece
    if len(piece) <= 74:
        return b"=2E" + piece[1:]
    return b"=2E=\n" + _undot(piece[1:])


class QuotedPrintable:
    """Quoted-printable per line, with the lines every subscriber shares encoded once.

    QP encodes each line on its own, so a personalised part is mostly lines already seen:
    a line seen a second time is kept (the template's lines, from the second message on),
    only the few personal lines are encoded each time. Both tables are bounded, so memory
    stays flat over a million subscribers.
    """

    def __init__(self, capacity: int = 5000, once: int = 2000) -> None:
        self._cache: dict[str, tuple[bytes, bool]] = {}
        self._seen_once: set[str] = set()
        self._capacity = capacity
        self._once = once

    def __call__(self, text: str) -> bytes:
        return self.encode(text)[0]

    def encode(self, text: str) -> tuple[bytes, bool]:
        """The encoded text (CRLF lines) and whether a line of it starts with a dot."""
        cache = self._cache
        out = []
        dotted = False
        if "\r" in text:                   # CRLF or a lone CR: both are line breaks
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        for line in text.split("\n"):
            hit = cache.get(line)
            if hit is None:
                encoded = _qp_line(line)
                hit = (encoded, encoded.startswith(b".") or b"\n." in encoded)
                self._remember(line, hit)
            out.append(hit[0])
            dotted = dotted or hit[1]
        return b"\r\n".join(out), dotted

    def _remember(self, line: str, hit: tuple[bytes, bool]) -> None:
        if line in self._seen_once:
            if len(self._cache) < self._capacity:
                self._cache[line] = hit
            return
        if len(self._seen_once) >= self._once:
            self._seen_once.clear()
        self._seen_once.add(line)


def safe_address(address: str) -> str:
    """The address itself, or `UnsafeAddressError` if it is not exactly one plain address."""
    if not _SAFE_ADDR.match(address):
        raise UnsafeAddressError(f"not a single plain address: {address!r}")
    return address


def mailbox_header(name: str, address: str) -> str:
    """`Name <addr>` with the name RFC 2047-encoded when needed; CR/LF cannot survive."""
    clean = _CONTROL.sub(" ", name).strip()
    return formataddr((clean, safe_address(address)), charset="utf-8") if clean else address


class MessageFactory:
    """Builds one campaign's messages; everything shared is prepared in `__init__`."""

    def __init__(self, campaign: Campaign, *, mailto: str | None = None) -> None:
        shared = EmailMessage(policy=SMTP)
        shared["From"] = campaign.from_
        if campaign.reply_to:
            shared["Reply-To"] = campaign.reply_to
        shared["Subject"] = campaign.subject
        list_name = campaign.list_name or campaign.name
        shared["List-Id"] = f"{list_name} <{campaign.list_id}>"
        shared["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        shared["MIME-Version"] = "1.0"
        shared["Content-Language"] = campaign.language
        self._shared = bytes(shared).rstrip(b"\r\n") + b"\r\n"
        self.envelope_from = parseaddr(campaign.from_)[1]
        self._domain = self.envelope_from.rpartition("@")[2]
        self._mailto = mailto
        self._boundary = "=_kz_" + secrets.token_hex(12)
        self._qp = QuotedPrintable()

    def message_id(self) -> str:
        return f"<{time.time_ns():x}.{secrets.token_hex(8)}@{self._domain}>"

    def build(self, subscriber: Subscriber, parts: Rendered, unsubscribe_url: str) -> Outgoing:
        """The complete message for one subscriber, CRLF line ends, ready for DATA."""
        to = mailbox_header(subscriber.name, subscriber.email)
        message_id = self.message_id()
        unsubscribe = f"<{unsubscribe_url}>"
        if self._mailto:
            unsubscribe += f",\r\n <mailto:{self._mailto}?subject=unsubscribe>"
        b = self._boundary
        head = (
            f"To: {to}\r\n"
            f"Date: {format_datetime(datetime.now(UTC), usegmt=True)}\r\n"
            f"Message-ID: {message_id}\r\n"
            f"List-Unsubscribe: {unsubscribe}\r\n"
            f'Content-Type: multipart/alternative; boundary="{b}"\r\n'
            "\r\n"
            f"--{b}\r\n"
            'Content-Type: text/plain; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        ).encode()
        middle = (
            f"\r\n--{b}\r\n"
            'Content-Type: text/html; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        ).encode("ascii")
        tail = f"\r\n--{b}--\r\n".encode("ascii")
        text, text_dots = self._qp.encode(parts.text)
        html, html_dots = self._qp.encode(parts.html)
        data = b"".join((self._shared, head, text, middle, html, tail))
        return Outgoing(recipient=subscriber.email, message_id=message_id, data=data,
                        wire_safe=not (text_dots or html_dots))


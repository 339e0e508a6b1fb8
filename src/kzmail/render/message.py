"""Assemble the MIME bytes of one personalised message, fast.

`MessageFactory` is built once per campaign: it folds and encodes the headers every
message shares (From, Subject, List-Id, ...) with the standard library, once. Per
subscriber it only adds To, Date, Message-ID and List-Unsubscribe and encodes the two
personalised bodies (quoted-printable, C speed): no `EmailMessage` per subscriber.
With a DKIM signer it signs each message, or, with `defer_signature`, hands on the message
with everything but the private-key operation done (`Outgoing.unsigned`) for `seal` to
complete once a signature has been made elsewhere (`dkim.pool`).
"""

from __future__ import annotations

import binascii
import hashlib
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.charset import Charset
from email.header import Header
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr, parseaddr
from typing import TYPE_CHECKING

from kzmail.dkim.signer import DkimSigner, Unsigned, bh_value, relaxed_piece
from kzmail.errors import UnsafeAddressError
from kzmail.models import Campaign, Rendered, Subscriber
from kzmail.render.related import related_pieces
from kzmail.text import LOOPBACK_ADDRESS, PLAIN_ADDRESS, without_controls

if TYPE_CHECKING:
    from kzmail.render.images import InlineImage

_MAX_ENCODED_WORD = 75


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message ready for the relay: envelope and bytes."""

    recipient: str
    message_id: str
    data: bytes
    # CRLF lines only and none starting with ".": the bytes can go to DATA as they are
    # (whoever rewrites `data`, e.g. to sign it, must keep that true or reset the flag)
    wire_safe: bool = False
    # set while the DKIM signature is still to be made: `data` lacks its header until sealed
    unsigned: Unsigned | None = None
    # the envelope sender when it differs per message (VERP), else the campaign's
    envelope_from: str | None = None


def qp_piece(chunk: str) -> bytes:
    """Quoted-printable for one chunk, ending in a line break (a soft one if need be).

    Ending every chunk on a line break lets encoded chunks be joined as they are: the
    soft breaks vanish on decoding, and no line grows past 76 characters. No line starts
    with ".", so the message needs no SMTP dot-stuffing.
    """
    if "\r" in chunk:
        chunk = chunk.replace("\r\n", "\n").replace("\r", "\n")
    encoded = binascii.b2a_qp(chunk.encode("utf-8"), quotetabs=False, istext=True, header=False)
    if b"=20\n" in encoded or b"=09\n" in encoded or encoded.endswith((b"=20", b"=09")):
        encoded = b"\n".join(_fit(line) for line in encoded.split(b"\n"))
    if b"." in encoded:
        encoded = b"\n".join(_undot(line) for line in encoded.split(b"\n"))
    encoded = encoded.replace(b"\n", b"\r\n")
    return encoded if encoded.endswith(b"\r\n") else encoded + b"=\r\n"


class ChunkEncoder:
    """Quoted-printable for rendered chunks, reusing the encoding of known static text.

    Static text is known by identity (the template's literals are the same objects in every
    render). Other chunks are remembered by value, up to `recent` of them: campaign-level
    values a template loops over (the demands, the sources) come out as new objects every
    render but are the same text for everyone, so they are encoded once, not per
    subscriber; personal values only pass through (the memory is cleared when full).
    With `canonical`, it also keeps each chunk's DKIM relaxed form: every encoded chunk
    ends on a line break, so the body canonicalises chunk by chunk.
    """

    def __init__(self, static: list[str], *, canonical: bool = False, recent: int = 1024) -> None:
        self._canonical = canonical
        self._recent: dict[str, tuple[bytes, bytes]] = {}
        self._recent_max = recent
        # keyed by identity: a template's literal text is the same object in every render
        self._known: dict[int, tuple[str, bytes, bytes]] = {}
        for text in static:
            if text:
                encoded = qp_piece(text)
                self._known[id(text)] = (
                    text,
                    encoded,
                    relaxed_piece(encoded) if canonical else b"",
                )

    def encode(self, chunks: tuple[str, ...], canonical: list[bytes] | None = None) -> bytes:
        """The encoded chunks; their relaxed forms are appended to `canonical` if given."""
        out: list[bytes] = []
        self.extend(out, chunks, None if canonical is None else canonical.append)
        return b"".join(out)

    def extend(
        self,
        out: list[bytes],
        chunks: tuple[str, ...],
        canonical: Callable[[bytes], object] | None = None,
    ) -> None:
        """`encode`, appending the encoded pieces to `out` (for one join per message) and
        handing their relaxed forms to `canonical` (e.g. a body hash's `update`)."""
        known = self._known
        for chunk in chunks:
            if not chunk:
                continue
            hit = known.get(id(chunk))
            if hit is not None and hit[0] is chunk:
                out.append(hit[1])
                if canonical is not None:
                    canonical(hit[2])
            else:
                encoded, relaxed = self._by_value(chunk)
                out.append(encoded)
                if canonical is not None:
                    canonical(relaxed)

    def _by_value(self, chunk: str) -> tuple[bytes, bytes]:
        """The encoding (and relaxed form) of a chunk that is not static template text."""
        pair = self._recent.get(chunk)
        if pair is None:
            encoded = qp_piece(chunk)
            pair = encoded, relaxed_piece(encoded) if self._canonical else b""
            if len(self._recent) >= self._recent_max:
                self._recent.clear()
            self._recent[str(chunk)] = pair
        return pair


def _fit(line: bytes) -> bytes:
    """A QP line within 76 characters: binascii lets a line whose trailing space it
    encodes (`=20`, as format=flowed's soft breaks have) reach 78; it gets a soft break."""
    pieces = []
    while len(line) > 76:
        cut = 75
        while b"=" in line[cut - 2 : cut]:  # not inside an "=XX"
            cut -= 1
        pieces.append(line[:cut] + b"=")
        line = line[cut:]
    pieces.append(line)
    return b"\n".join(pieces)


def _undot(piece: bytes) -> bytes:
    """A QP line that starts with "." gets it encoded, so DATA needs no dot-stuffing:
    `=2E` in place when the line stays within 76 characters, else `=2E` and a soft break."""
    if not piece.startswith(b"."):
        return piece
    if len(piece) <= 74:
        return b"=2E" + piece[1:]
    return b"=2E=\n" + _undot(piece[1:])


def safe_address(address: str) -> str:
    """The address itself, or `UnsafeAddressError` if it is not exactly one plain address
    (a domain of two or more labels, or `localhost`)."""
    if not (PLAIN_ADDRESS.fullmatch(address) or LOOPBACK_ADDRESS.fullmatch(address)):
        raise UnsafeAddressError(f"not a single plain address: {address!r}")
    return address


def mailbox_header(name: str, address: str) -> str:
    """`Name <addr>` with the name RFC 2047-encoded when needed; CR/LF cannot survive."""
    clean = without_controls(name)
    if not clean:
        return safe_address(address)
    if clean.isascii() and "=?" not in clean:
        return formataddr((clean, safe_address(address)))
    # an ASCII name that looks like an encoded word would be decoded by the reader, so it
    # is encoded too; one encoded word may hold 75 characters (RFC 2047 section 2), and a
    # longer name is split into several, folded, so no line nears 998 octets
    encoded = Charset("utf-8").header_encode(clean)
    if len(encoded) > _MAX_ENCODED_WORD:
        encoded = Header(clean, "utf-8", header_name="To").encode(
            maxlinelen=_MAX_ENCODED_WORD, linesep="\r\n"
        )
    return f"{encoded} <{safe_address(address)}>"


class MessageFactory:
    """Builds one campaign's messages; everything shared is prepared in `__init__`."""

    def __init__(
        self,
        campaign: Campaign,
        *,
        mailto: str | None = None,
        static_text: list[str] | None = None,
        signer: DkimSigner | None = None,
        images: Sequence[InlineImage] = (),
    ) -> None:
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
        # the reply carries the token, so `unsubscribes import` can trust it without the From
        self._mailto = f",\r\n <mailto:{mailto}?subject=unsubscribe%20" if mailto else ""
        b = "=_kz_" + secrets.token_hex(12)
        self._boundary = b
        self._encoder = ChunkEncoder(static_text or [], canonical=signer is not None)
        self._signer = signer
        self._date_second, self._date_text = -1, ""
        # the body's fixed pieces, each starting and ending on a line break
        self._text_head = (
            f"--{b}\r\n"
            # RFC 3676: the text part's soft line breaks end with a space; clients re-flow
            'Content-Type: text/plain; charset="utf-8"; format=flowed\r\n'
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        ).encode()
        self._middle = (
            f"\r\n--{b}\r\n"
            'Content-Type: text/html; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        ).encode()
        self._tail = f"\r\n--{b}--\r\n".encode()  # the CRLF before "--" is the delimiter's
        if images:  # the HTML branch becomes multipart/related: fixed pieces, made here once
            self._middle, self._tail = related_pieces(b, images)
        # their DKIM-canonical forms, for the piecewise body hash
        self._canonical_fixed = (
            relaxed_piece(self._text_head),
            relaxed_piece(self._middle),
            relaxed_piece(self._tail),
        )

    def _date(self) -> str:
        """The Date header's value, in UTC as `+0000` (RFC 5322 3.3; `GMT` is obsolete
        syntax); it changes once a second, so it is made once a second."""
        second = int(time.time())
        if second != self._date_second:
            self._date_second = second
            self._date_text = format_datetime(datetime.fromtimestamp(second, UTC))
        return self._date_text

    def _mailto_of(self, unsubscribe_url: str) -> str:
        return f"{self._mailto}{unsubscribe_url.rpartition('/u/')[2]}>" if self._mailto else ""

    def message_id(self) -> str:
        return f"<{time.time_ns():x}.{secrets.token_hex(8)}@{self._domain}>"

    def build(
        self,
        subscriber: Subscriber,
        parts: Rendered,
        unsubscribe_url: str,
        *,
        defer_signature: bool = False,
    ) -> Outgoing:
        """The complete message for one subscriber, CRLF line ends, ready for DATA.

        With `defer_signature` (and a signer), the message still needs `seal`.
        """
        to = mailbox_header(subscriber.name, subscriber.email)
        message_id = self.message_id()
        head = (
            f"To: {to}\r\n"
            f"Date: {self._date()}\r\n"
            f"Message-ID: {message_id}\r\n"
            f"List-Unsubscribe: <{unsubscribe_url}>{self._mailto_of(unsubscribe_url)}\r\n"
            f'Content-Type: multipart/alternative; boundary="{self._boundary}"\r\n'
            "\r\n"
        ).encode()
        pieces = [self._shared, head, self._text_head]
        extend = self._encoder.extend
        if self._signer is None:
            extend(pieces, parts.text_chunks)
            pieces.append(self._middle)
            extend(pieces, parts.html_chunks)
        else:
            # the body hash is fed piece by piece: no joined copy of the canonical body
            text_head, middle, tail = self._canonical_fixed
            hasher = hashlib.sha256(text_head)
            extend(pieces, parts.text_chunks, hasher.update)
            pieces.append(self._middle)
            hasher.update(middle)
            extend(pieces, parts.html_chunks, hasher.update)
            hasher.update(tail)
        pieces.append(self._tail)
        data = b"".join(pieces)  # the one copy of the body per message
        if self._signer is not None:
            # the body ends on "--boundary--": no trailing empty lines to strip
            bh = bh_value(hasher.digest())
            if defer_signature:
                return Outgoing(
                    recipient=subscriber.email,
                    message_id=message_id,
                    data=data,
                    wire_safe=True,
                    unsigned=self._signer.prepare(data, bh),
                )
            data = self._signer.sign(data, bh)  # wire-safe still
        # CRLF lines and none starting with ".": DATA can take the bytes as they are
        return Outgoing(
            recipient=subscriber.email, message_id=message_id, data=data, wire_safe=True
        )

    def seal(self, message: Outgoing, signature: bytes) -> Outgoing:
        """A message built with `defer_signature`, signed: `signature` is over its digest."""
        if message.unsigned is None or self._signer is None:
            raise ValueError("seal: the message is not waiting for a signature")
        # the DKIM-Signature header is folded CRLF ASCII: still wire-safe
        return Outgoing(
            recipient=message.recipient,
            message_id=message.message_id,
            data=self._signer.finish(message.unsigned, signature),
            wire_safe=message.wire_safe,
            envelope_from=message.envelope_from,
        )

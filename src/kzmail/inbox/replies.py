"""Replies in the organiser's mailbox (mbox or Maildir): who asked to unsubscribe, proven.

A reply is acted on only when it is proven to come from its sender: it carries the list's
unsubscribe token, or the receiving server's `Authentication-Results` (from an authserv-id
the organiser trusts) show DKIM or SPF passing and aligned with From; `Trust.from_header`
takes the mailbox's word instead. Automatic mail (bounces, no-reply senders) is skipped.
Yields the proven address, a `Problem` to report, or an `Unverified` reply not acted on.
"""

from __future__ import annotations

import mailbox
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from email.utils import getaddresses
from pathlib import Path

from kzmail.inbox import authresults
from kzmail.lists.rows import Problem, clean_address
from kzmail.tokens import TokenSigner

_AUTO_SENDERS = re.compile(r"^(mailer-daemon|postmaster|no-?reply|bounces?)([+@-]|$)", re.I)


@dataclass(frozen=True)
class Trust:
    """What proves a reply: the authserv-ids whose headers count, or From taken as it is."""

    authserv_ids: tuple[str, ...] = ()
    trust_from: bool = False


@dataclass(frozen=True)
class Unverified:
    """A reply whose sender nothing proves: reported, not acted on."""

    where: str
    address: str


_TOKEN = re.compile(
    r"(?<![A-Za-z0-9_-])(?:[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{22}|A[A-Za-z0-9_-]{42,1000})"
    r"(?![A-Za-z0-9_.-])"
)


_MAX_TOKEN_SCAN = 64 * 1024  # a reply quoting our message has the link near its end


_MAX_CANDIDATES = 20


def auto_reason(message: Message) -> str | None:
    """Why a message is not a person's request (auto-reply, bounce), or None."""
    auto = str(message.get("Auto-Submitted", "no")).strip().lower()
    if auto and auto != "no":
        return f"auto-submitted ({auto})"
    if str(message.get("Precedence", "")).strip().lower() in {"bulk", "junk", "list", "auto_reply"}:
        return "bulk or auto-reply precedence"
    if message.get("X-Autoreply") or message.get("X-Autorespond"):
        return "auto-reply"
    if str(message.get("Return-Path", "")).strip() == "<>":
        return "bounce (empty return path)"
    if "report" in message.get_content_type() and message.get_content_maintype() == "multipart":
        return "delivery report"
    return None


def _sender(message: Message) -> str:
    """The single address in From, or ValueError."""
    found = [
        addr for _, addr in getaddresses([str(h) for h in message.get_all("From", [])]) if addr
    ]
    if len(found) != 1:
        raise ValueError("no single From address")
    address = clean_address(found[0])
    if _AUTO_SENDERS.match(address):
        raise ValueError(f"automatic sender {address}")
    return address


def _texts(message: Message) -> Iterator[str]:
    """The subject and the text parts, decoded, each cut to a bounded length."""
    yield str(message.get("Subject", ""))[:_MAX_TOKEN_SCAN]
    for part in message.walk():
        if part.get_content_maintype() != "text":
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            text = payload.decode("utf-8", errors="replace")
            yield text[:_MAX_TOKEN_SCAN] + text[-_MAX_TOKEN_SCAN:]


def token_of(message: Message, signer: TokenSigner) -> tuple[str, str] | None:
    """(list id, address) of the first genuine unsubscribe token in the reply, or None."""
    tried = 0
    for text in _texts(message):
        for candidate in _TOKEN.findall(text):
            tried += 1
            if tried > _MAX_CANDIDATES:
                return None
            found = signer.verify(candidate)
            if found is not None:
                return found
    return None


def _token_address(message: Message, signer: TokenSigner) -> str | None:
    """The address named by a genuine unsubscribe token in the reply, or None."""
    found = token_of(message, signer)
    return None if found is None else found[1]


def _verified(message: Message, sender: str, trust: Trust, signer: TokenSigner) -> str | None:
    """The address this reply proves it may unsubscribe, or None."""
    token_address = _token_address(message, signer)
    if token_address is not None:
        return clean_address(token_address)
    if trust.trust_from or authresults.proven(message, sender, trust.authserv_ids):
        return sender
    return None


def from_messages(
    messages: Iterator[tuple[str, Message]], trust: Trust, signer: TokenSigner
) -> Iterator[str | Problem | Unverified]:
    for where, message in messages:
        reason = auto_reason(message)
        if reason is not None:
            yield Problem(where, 0, f"skipped: {reason}")
            continue
        yield verify_reply(where, message, trust, signer)


def verify_reply(
    where: str, message: Message, trust: Trust, signer: TokenSigner
) -> str | Problem | Unverified:
    """The proven sender of one reply (not automatic mail), or why it proves nothing."""
    try:
        sender = _sender(message)
        address = _verified(message, sender, trust, signer)
    except ValueError as exc:
        return Problem(where, 0, f"skipped: {exc}")
    return address if address is not None else Unverified(where, sender)


def asks_to_unsubscribe(message: Message, signer: TokenSigner) -> bool:
    """True for a reply to the mailto unsubscribe address: its subject, or a genuine token."""
    if "unsubscribe" in str(message.get("Subject", "")).lower():
        return True
    return _token_address(message, signer) is not None


def mbox_messages(path: Path) -> Iterator[tuple[str, Message]]:
    box = mailbox.mbox(path, create=False)
    try:
        for number, message in enumerate(box, start=1):
            yield f"{path} message {number}", message
    finally:
        box.close()


def maildir_messages(path: Path) -> Iterator[tuple[str, Message]]:
    box = mailbox.Maildir(path, create=False)
    for key in sorted(box.keys()):
        yield f"{path}/{key}", box[key]

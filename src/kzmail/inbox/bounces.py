"""What one message in the reply mailbox is: a bounce, a complaint, an auto-reply, a reply.

`read(data)` takes a message's bytes and hands back a `Reading`: its kind (`bounce`,
`complaint`, `auto-reply`, `unsubscribe`, `other`), the failed or complaining recipients
with kzmail's verdict for each (`kzmail.inbox.classify`), the Message-ID of the returned
message (kzmail keeps one per delivery) and a VERP token found in the bounce's own
envelope address. RFC 3464 reports and ARF (RFC 5965) are parsed here; flufl.bounce
(GNU Mailman's detectors) finds the failed recipients of the non-standard formats, and
the status and diagnostic are then read from the lines around each recipient.
A message that cannot be parsed cleanly is a `Malformed`: reported, never acted on.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from email.parser import HeaderParser
from email.utils import getaddresses, parseaddr

from flufl.bounce import all_failures

from kzmail.inbox.classify import Verdict, classify

MAX_TEXT = 256 * 1024  # the part of a bounce's text searched for codes and wordings

_ENHANCED = re.compile(r"(?<![\d.])([245]\.\d{1,3}\.\d{1,3})(?![\d.])")
_SMTP = re.compile(r"(?<![\d.])([245]\d\d)(?:[ -]|$)", re.M)
_RETURNED_ID = re.compile(rb"(?im)^message-id:[ \t]*(<[^>\s]{3,250}>)")
_VERP = re.compile(r"\+([0-9a-fA-F][0-9a-fA-F-]{20,120})@")
_BOUNCE_FROM = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|mailerdaemon)@", re.I)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery (?:status|failure|has failed|notification)|returned mail"
    r"|failure notice|mail delivery (?:failed|system|subsystem)|could not be delivered"
    r"|unzustellbar|nicht zugestellt|delivery problem",
    re.I,
)
_AUTO_SUBJECT = re.compile(
    r"out of (?:the )?office|auto(?:matic)?[ -]?(?:reply|response|antwort)|abwesen|vacation"
    r"|away from|ooo\b|\[ticket|ticket #|request (?:received|#)|we have received your",
    re.I,
)
_ROBOT_HEADERS = ("X-Autoreply", "X-Autorespond", "X-OTRS-Loop", "RT-Ticket", "X-Zendesk-From")
_MALFORMED = ("StartBoundaryNotFoundDefect", "MultipartInvariantViolationDefect")


@dataclass(frozen=True, slots=True)
class Failure:
    """One recipient a bounce or complaint names, with kzmail's verdict."""

    address: str
    status: str  # the enhanced code, "" when none was given
    code: int | None  # the SMTP reply code, when one was given
    diagnostic: str
    verdict: Verdict


@dataclass
class Reading:
    """What a message is and whom it concerns (see the module)."""

    kind: str
    key: str  # handled once: its own Message-ID, or a hash of its bytes
    failures: list[Failure] = field(default_factory=list)
    returned_id: str | None = None
    verp: str | None = None
    reporter: str = ""  # the domain that sent the bounce or the report
    message: Message | None = None


@dataclass(frozen=True, slots=True)
class Malformed:
    """A message that could not be read cleanly: one line, never acted on."""

    reason: str


def _key(message: Message, data: bytes) -> str:
    own = str(message.get("Message-ID", "")).strip()
    return f"mid:{own}" if own else "sha256:" + hashlib.sha256(data).hexdigest()


def _fields(part: Message) -> list[Message]:
    """The field groups of a delivery-status or feedback-report part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    raw = part.get_payload(decode=True)
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(payload)
    return [HeaderParser().parsestr(block + "\n") for block in re.split(r"\n\s*\n", text)]


def _value(group: Message, name: str) -> str:
    text = " ".join(str(group.get(name, "")).split())
    return text.split(";", 1)[1].strip() if ";" in text else text


def _codes(status: str, text: str) -> tuple[str, int | None]:
    found = _ENHANCED.search(status) or _ENHANCED.search(text)
    smtp = _SMTP.search(text)
    return (found.group(1) if found else ""), (int(smtp.group(1)) if smtp else None)


def _failure(address: str, status: str, diagnostic: str, action: str = "failed") -> Failure:
    enhanced, code = _codes(status, diagnostic)
    if not enhanced and code is not None:
        enhanced = f"{str(code)[0]}.0.0"
    verdict = classify(enhanced, diagnostic, action=action)
    return Failure(address.strip("<>").lower(), enhanced, code, diagnostic[:500], verdict)


def _dsn(report: Message) -> list[Failure]:
    """The recipients of an RFC 3464 report, one `Failure` each."""
    found: list[Failure] = []
    for part in report.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        for group in _fields(part)[1:] or _fields(part):
            address = _value(group, "Final-Recipient") or _value(group, "Original-Recipient")
            if "@" not in address:
                continue
            diagnostic = _value(group, "Diagnostic-Code") or _value(group, "Status")
            action = _value(group, "Action") or "failed"
            found.append(_failure(address, _value(group, "Status"), diagnostic, action))
    return found


def _text(message: Message) -> str:
    """The message's text parts, decoded and cut to `MAX_TEXT`."""
    chunks: list[str] = []
    size = 0
    for part in message.walk():
        if part.get_content_maintype() != "text" or size > MAX_TEXT:
            continue
        raw = part.get_payload(decode=True)
        if isinstance(raw, bytes):
            charset = part.get_content_charset() or "utf-8"
            try:
                chunk = raw.decode(charset, "replace")
            except LookupError:
                chunk = raw.decode("utf-8", "replace")
            chunks.append(chunk[: MAX_TEXT - size])
            size += len(chunks[-1])
    return "\n".join(chunks)


def _window(text: str, address: str) -> str:
    """The lines around the first mention of `address`: where MTAs put the reason."""
    lines = text.splitlines()
    low = address.lower()
    for index, line in enumerate(lines):
        if low in line.lower():
            return " ".join(s.strip() for s in lines[index : index + 8] if s.strip())
    return " ".join(text.split())[:1000]


def _heuristic(message: Message) -> list[Failure]:
    """Failed recipients found by flufl.bounce, with status and wording from the text."""
    temporary, permanent = all_failures(message)
    text = _text(message)
    found: list[Failure] = []
    for raw, action in [(a, "failed") for a in sorted(permanent)] + [
        (a, "delayed") for a in sorted(temporary - permanent)
    ]:
        address = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        if "@" not in address:
            continue
        window = _window(text, address)
        found.append(_failure(address, "", window, action))
    return found


def _complaint(report: Message) -> list[Failure]:
    """The subscriber an ARF report names: Original-Rcpt-To, else the returned To."""
    addresses: list[str] = []
    for part in report.walk():
        if part.get_content_type() == "message/feedback-report":
            for group in _fields(part):
                addresses += [_value(group, "Original-Rcpt-To")]
        elif part.get_content_type() in ("message/rfc822", "text/rfc822-headers"):
            inner = part.get_payload(0) if part.is_multipart() else None
            headers = (
                inner
                if isinstance(inner, Message)
                else HeaderParser().parsestr(str(part.get_payload()))
            )
            addresses += [a for _, a in getaddresses([str(h) for h in headers.get_all("To", [])])]
    clean = [a.strip("<> ").lower() for a in addresses if "@" in a]
    complaint = Verdict("hard", "complaint (feedback loop report)")
    return [Failure(a, "", None, "abuse report", complaint) for a in dict.fromkeys(clean)][:1]


def _is_bounce(message: Message) -> bool:
    sender = parseaddr(str(message.get("From", "")))[1]
    subject = str(message.get("Subject", ""))
    if message.get("X-Failed-Recipients"):
        return True
    automatic = _BOUNCE_FROM.match(sender) is not None
    automatic |= str(message.get("Return-Path", "")).strip() == "<>"
    return automatic and _BOUNCE_SUBJECT.search(subject) is not None


def _is_auto_reply(message: Message) -> bool:
    auto = str(message.get("Auto-Submitted", "no")).strip().lower()
    precedence = str(message.get("Precedence", "")).strip().lower()
    if (auto and auto != "no") or precedence in {"auto_reply", "bulk", "junk"}:
        return True
    if any(message.get(name) for name in _ROBOT_HEADERS):
        return True
    return _AUTO_SUBJECT.search(str(message.get("Subject", ""))) is not None


def _envelope_token(message: Message) -> str | None:
    for name in ("Delivered-To", "X-Original-To", "Envelope-To", "To"):
        for value in message.get_all(name, []):
            found = _VERP.search(str(value))
            if found:
                return found.group(1)
    return None


def _returned_id(data: bytes) -> str | None:
    """The Message-ID of the returned message: the first below the bounce's own header."""
    cut = min((i for i in (data.find(b"\r\n\r\n"), data.find(b"\n\n")) if i >= 0), default=-1)
    if cut < 0:
        return None
    found = _RETURNED_ID.search(data, cut, cut + 4 * MAX_TEXT)
    return found.group(1).decode("ascii", "replace") if found else None


def _sort(message: Message) -> tuple[str, list[Failure]]:
    report = message.get_content_type() == "multipart/report"
    report_type = str(message.get_param("report-type", "") or "").lower()
    if report and report_type == "feedback-report":
        return "complaint", _complaint(message)
    if report and report_type == "delivery-status":
        return "bounce", _dsn(message) or _heuristic(message)
    if _is_bounce(message):
        return "bounce", _dsn(message) or _heuristic(message)
    if _is_auto_reply(message):
        return "auto-reply", []
    return "reply", []


def read(data: bytes) -> Reading | Malformed:
    """What the message in `data` is (see the module); `reply` is decided by the caller
    (`unsubscribe` or `other`)."""
    try:
        message = message_from_bytes(data)
        defects = [type(d).__name__ for p in message.walk() for d in p.defects]
        broken = [d for d in defects if d in _MALFORMED]
        if broken or not message.keys():
            return Malformed(f"broken MIME ({', '.join(broken) or 'no header'})")
        kind, failures = _sort(message)
        sender = parseaddr(str(message.get("From", "")))[1]
        reading = Reading(kind, _key(message, data), failures, message=message)
        reading.reporter = sender.rpartition("@")[2].lower()
        if kind in ("bounce", "complaint"):
            reading.returned_id = _returned_id(data)
            reading.verp = _envelope_token(message)
        return reading
    except Exception as exc:  # noqa: BLE001 - hostile input: whatever breaks is one line
        return Malformed(f"cannot be parsed ({type(exc).__name__}: {str(exc)[:120]})")

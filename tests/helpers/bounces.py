"""Bounce, complaint and reply messages as other MTAs write them, for tests.

Written for these tests after the formats the MTAs send (RFC 3464 reports from Postfix,
Exchange/Office 365, Gmail, GMX and Amazon SES; Exim's and qmail's plain-text formats; an
ARF report, RFC 5965); no text is copied from third-party sources. Each `SAMPLES` entry
carries the verdict kzmail must reach for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

RETURNED = "<18a2b3c4d5e6f.0123456789abcdef@example.org>"


def dsn(
    reporter: str,
    recipient: str,
    status: str,
    diagnostic: str,
    *,
    action: str = "failed",
    returned_id: str = RETURNED,
    own_id: str = "<dsn.1@mx.test>",
    sender: str = "MAILER-DAEMON",
) -> bytes:
    """An RFC 3464 delivery status notification with the returned headers."""
    return (
        f"Return-Path: <>\r\n"
        f"From: Mail Delivery System <{sender}@{reporter}>\r\n"
        f"To: news@example.org\r\n"
        f"Subject: Delivery Status Notification (Failure)\r\n"
        f"Message-ID: {own_id}\r\n"
        f"Auto-Submitted: auto-replied\r\n"
        f"MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="b-1"\r\n'
        f"\r\n"
        f"--b-1\r\n"
        f"Content-Type: text/plain; charset=us-ascii\r\n\r\n"
        f"Delivery to the following recipient failed: {recipient}\r\n\r\n"
        f"--b-1\r\n"
        f"Content-Type: message/delivery-status\r\n\r\n"
        f"Reporting-MTA: dns; {reporter}\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n"
        f"Action: {action}\r\n"
        f"Status: {status}\r\n"
        f"Diagnostic-Code: smtp; {diagnostic}\r\n\r\n"
        f"--b-1\r\n"
        f"Content-Type: text/rfc822-headers\r\n\r\n"
        f"From: News <news@example.org>\r\n"
        f"To: {recipient}\r\n"
        f"Subject: Newsletter\r\n"
        f"Message-ID: {returned_id}\r\n\r\n"
        f"--b-1--\r\n"
    ).encode()


def exim(recipient: str, error: str, returned_id: str = RETURNED) -> bytes:
    return (
        "Return-Path: <>\r\n"
        "From: Mail Delivery System <Mailer-Daemon@mx.exim.test>\r\n"
        "To: news@example.org\r\n"
        "Subject: Mail delivery failed: returning message to sender\r\n"
        "Message-Id: <E1kz-0001@mx.exim.test>\r\n"
        f"X-Failed-Recipients: {recipient}\r\n"
        "Auto-Submitted: auto-replied\r\n\r\n"
        "This message was created automatically by mail delivery software.\r\n\r\n"
        "A message that you sent could not be delivered to one or more of its\r\n"
        "recipients. This is a permanent error. The following address(es) failed:\r\n\r\n"
        f"  {recipient}\r\n"
        "    host mx.other.test [192.0.2.7]\r\n"
        f"    SMTP error from remote mail server after RCPT TO:<{recipient}>:\r\n"
        f"    {error}\r\n\r\n"
        "------ This is a copy of the message, including all the headers. ------\r\n\r\n"
        "From: News <news@example.org>\r\n"
        f"To: {recipient}\r\n"
        f"Message-ID: {returned_id}\r\n"
        "Subject: Newsletter\r\n\r\nHello\r\n"
    ).encode()


def qmail(recipient: str, error: str, returned_id: str = RETURNED) -> bytes:
    return (
        "Return-Path: <>\r\n"
        "From: MAILER-DAEMON@qmail.test\r\n"
        "To: news@example.org\r\n"
        "Subject: failure notice\r\n"
        "Message-ID: <qmail.77@qmail.test>\r\n\r\n"
        "Hi. This is the qmail-send program at qmail.test.\r\n"
        "I'm afraid I wasn't able to deliver your message to the following addresses.\r\n"
        "This is a permanent error; I've given up. Sorry it didn't work out.\r\n\r\n"
        f"<{recipient}>:\r\n"
        f"{error}\r\n\r\n"
        "--- Below this line is a copy of the message.\r\n\r\n"
        "From: News <news@example.org>\r\n"
        f"To: {recipient}\r\n"
        f"Message-ID: {returned_id}\r\n"
        "Subject: Newsletter\r\n\r\nHello\r\n"
    ).encode()


def arf(recipient: str, returned_id: str = RETURNED) -> bytes:
    """An ARF (RFC 5965) abuse report, as a feedback loop sends it (SES, Yahoo, AOL)."""
    return (
        "From: complaints@email-abuse.amazonses.com\r\n"
        "To: news@example.org\r\n"
        "Subject: complaint\r\n"
        "Message-ID: <arf.1@amazonses.com>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="f"\r\n\r\n'
        "--f\r\nContent-Type: text/plain\r\n\r\nThis is an email abuse report.\r\n\r\n"
        "--f\r\nContent-Type: message/feedback-report\r\n\r\n"
        "Feedback-Type: abuse\r\nUser-Agent: SomeGenerator/1.0\r\nVersion: 1\r\n"
        f"Original-Rcpt-To: {recipient}\r\n\r\n"
        "--f\r\nContent-Type: message/rfc822\r\n\r\n"
        f"From: News <news@example.org>\r\nTo: {recipient}\r\n"
        f"Message-ID: {returned_id}\r\nSubject: Newsletter\r\n\r\nHello\r\n\r\n"
        "--f--\r\n"
    ).encode()


def reply(sender: str, subject: str, body: str, *, own_id: str, **headers: str) -> bytes:
    extra = "".join(f"{k.replace('_', '-')}: {v}\r\n" for k, v in headers.items())
    return (
        f"From: {sender}\r\nTo: news@example.org\r\nSubject: {subject}\r\n"
        f"Message-ID: {own_id}\r\n{extra}\r\n{body}\r\n"
    ).encode()


@dataclass(frozen=True)
class Sample:
    name: str
    data: bytes
    kind: str  # the message's kind
    address: str | None  # the failed or complaining recipient
    verdict: str | None  # hard, soft, policy, delayed
    suppress: bool


SAMPLES = [
    Sample(
        "postfix-unknown-user",
        dsn(
            "mx.postfix.test",
            "nobody@postfix.test",
            "5.1.1",
            "550 5.1.1 <nobody@postfix.test>: Recipient address rejected: User unknown in "
            "virtual mailbox table",
        ),
        "bounce",
        "nobody@postfix.test",
        "hard",
        True,
    ),
    Sample(
        "postfix-no-domain",
        dsn(
            "mx.postfix.test",
            "a@nowhere.invalid",
            "5.4.4",
            "Host or domain name not found. Name service error for name=nowhere.invalid "
            "type=A: Host not found",
        ),
        "bounce",
        "a@nowhere.invalid",
        "hard",
        True,
    ),
    Sample(
        "exim-unknown",
        exim(
            "gone@exim.test",
            "550 5.1.1 <gone@exim.test>: Recipient "
            "address rejected: User unknown in local recipient table",
        ),
        "bounce",
        "gone@exim.test",
        "hard",
        True,
    ),
    Sample(
        "exim-spam-block",
        exim("reader@exim.test", "550 5.7.1 Message rejected as spam by Content Filtering"),
        "bounce",
        "reader@exim.test",
        "policy",
        False,
    ),
    Sample(
        "qmail-over-quota",
        qmail("full@qmail.test", "The users mailfolder is over the allowed quota (size). (#5.2.2)"),
        "bounce",
        "full@qmail.test",
        "soft",
        False,
    ),
    Sample(
        "qmail-no-mailbox",
        qmail("old@qmail.test", "Sorry, no mailbox here by that name. (#5.1.1)"),
        "bounce",
        "old@qmail.test",
        "hard",
        True,
    ),
    Sample(
        "exchange-not-found",
        dsn(
            "exchange.corp.test",
            "left@corp.test",
            "5.1.10",
            "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
            sender="postmaster",
        ),
        "bounce",
        "left@corp.test",
        "hard",
        True,
    ),
    Sample(
        "office365-ip-blocked",
        dsn(
            "outlook.com",
            "reader@outlook.test",
            "5.7.708",
            "550 5.7.708 Service unavailable. Access denied, traffic not accepted from this IP",
            sender="postmaster",
        ),
        "bounce",
        "reader@outlook.test",
        "policy",
        False,
    ),
    Sample(
        "office365-disabled",
        dsn(
            "outlook.com",
            "quit@outlook.test",
            "5.2.1",
            "550 5.2.1 The email account that you tried to reach is disabled",
            sender="postmaster",
        ),
        "bounce",
        "quit@outlook.test",
        "hard",
        True,
    ),
    Sample(
        "gmail-no-account",
        dsn(
            "googlemail.com",
            "typo@gmail.test",
            "5.1.1",
            "550-5.1.1 The email account that you tried to reach does not exist. Please try "
            "double-checking the recipient's email address",
        ),
        "bounce",
        "typo@gmail.test",
        "hard",
        True,
    ),
    Sample(
        "gmail-unsolicited",
        dsn(
            "googlemail.com",
            "reader@gmail.test",
            "5.7.1",
            "550-5.7.1 [192.0.2.1] Our system has detected that this message is likely "
            "unsolicited mail. To reduce the amount of spam sent to Gmail, this message has "
            "been blocked",
        ),
        "bounce",
        "reader@gmail.test",
        "policy",
        False,
    ),
    Sample(
        "gmail-dmarc",
        dsn(
            "googlemail.com",
            "reader2@gmail.test",
            "5.7.26",
            "550-5.7.26 This mail has been blocked because the sender is unauthenticated. "
            "Gmail requires all senders to authenticate with either SPF or DKIM",
        ),
        "bounce",
        "reader2@gmail.test",
        "policy",
        False,
    ),
    Sample(
        "gmail-over-quota-expired",
        dsn(
            "googlemail.com",
            "busy@gmail.test",
            "4.2.2",
            "452-4.2.2 The email account that you tried to reach is over quota",
        ),
        "bounce",
        "busy@gmail.test",
        "soft",
        False,
    ),
    Sample(
        "gmx-blocklisted-5xx",
        dsn(
            "mx.gmx.net",
            "leser@gmx.test",
            "5.0.0",
            "554-gmx.net (mxgmx) Nemesis ESMTP Service not available 554-No SMTP service "
            "554-IP address is block listed",
        ),
        "bounce",
        "leser@gmx.test",
        "policy",
        False,
    ),
    Sample(
        "webde-mailbox-unavailable",
        dsn(
            "mx.web.de",
            "weg@web.test",
            "5.0.0",
            "550 Requested action not taken: mailbox unavailable",
        ),
        "bounce",
        "weg@web.test",
        "hard",
        True,
    ),
    Sample(
        "ses-user-unknown",
        dsn("amazonses.com", "nope@ses.test", "5.1.1", "550 5.1.1 user unknown"),
        "bounce",
        "nope@ses.test",
        "hard",
        True,
    ),
    Sample(
        "ses-mailbox-full",
        dsn("amazonses.com", "voll@ses.test", "5.2.2", "552 5.2.2 Mailbox full"),
        "bounce",
        "voll@ses.test",
        "soft",
        False,
    ),
    Sample(
        "yahoo-delayed",
        dsn(
            "yahoo.test",
            "later@yahoo.test",
            "4.7.0",
            "421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred",
            action="delayed",
        ),
        "bounce",
        "later@yahoo.test",
        "delayed",
        False,
    ),
    Sample("ses-complaint", arf("angry@ses.test"), "complaint", "angry@ses.test", "hard", True),
    Sample(
        "vacation",
        reply(
            "holiday@example.net",
            "Out of Office: Newsletter",
            "I am away until Monday.",
            own_id="<v.1@example.net>",
            Auto_Submitted="auto-replied",
        ),
        "auto-reply",
        None,
        None,
        False,
    ),
    Sample(
        "ticket-robot",
        reply(
            "support@example.net",
            "[Ticket#2026120212] Newsletter",
            "Your request has been received.",
            own_id="<t.1@example.net>",
        ),
        "auto-reply",
        None,
        None,
        False,
    ),
    Sample(
        "human",
        reply(
            "friend@example.net",
            "Re: Newsletter",
            "Thanks, nice issue!",
            own_id="<h.1@example.net>",
        ),
        "other",
        None,
        None,
        False,
    ),
]


def write_maildir(folder: Path, messages: list[tuple[str, bytes]]) -> Path:
    """A Maildir at `folder` with each (name, bytes) in `new/`."""
    for sub in ("new", "cur", "tmp"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for name, data in messages:
        (folder / "new" / name).write_bytes(data)
    return folder


def write_mbox(path: Path, messages: list[bytes]) -> Path:
    with path.open("wb") as handle:
        for data in messages:
            body = data.replace(b"\r\n", b"\n").replace(b"\nFrom ", b"\n>From ")
            handle.write(b"From MAILER-DAEMON Wed Dec  2 10:00:00 2026\n" + body + b"\n")
    return path

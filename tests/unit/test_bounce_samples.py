"""Other MTAs' bounce formats, each with the verdict a careful postmaster would reach."""

from __future__ import annotations

import pytest

from kzmail.inbox.bounces import Malformed, read
from kzmail.inbox.classify import classify
from tests.helpers.bounces import RETURNED, SAMPLES, Sample


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.name)
def test_each_sample_gets_its_verdict(sample: Sample) -> None:
    reading = read(sample.data)
    assert not isinstance(reading, Malformed)
    expected_kind = "reply" if sample.kind == "other" else sample.kind
    assert reading.kind == expected_kind
    if sample.address is None:
        assert reading.failures == []
        return
    assert [f.address for f in reading.failures] == [sample.address]
    failure = reading.failures[0]
    assert failure.verdict.kind == sample.verdict, failure
    assert failure.verdict.suppresses == sample.suppress
    assert reading.returned_id == RETURNED


@pytest.mark.parametrize(
    ("status", "text"),
    [
        ("5.7.1", "550 5.7.1 Service unavailable; client host blocked using Spamhaus"),
        ("5.0.0", "550 Message rejected because it looks like SPAM"),
        ("5.1.1", "550 5.1.1 rejected: your DKIM signature failed; user unknown"),
        ("5.0.0", "554 5.0.0 Rejected due to DMARC policy"),
        ("", "552 message content rejected, virus found"),
    ],
)
def test_a_5xx_that_blames_the_sender_never_suppresses(status: str, text: str) -> None:
    verdict = classify(status, text)
    assert verdict.kind == "policy"
    assert not verdict.suppresses


def test_an_unclear_5xx_is_counted_not_suppressed() -> None:
    assert classify("5.0.0", "550 rejected").kind == "soft"


@pytest.mark.parametrize(
    ("status", "text", "kind"),
    [
        ("5.2.1", "552 5.2.1 mailbox full, try again later", "soft"),
        ("5.1.1", "550 5.1.1 mailbox temporarily disabled", "soft"),
        ("5.2.1", "550 5.2.1 The email account that you tried to reach is disabled", "hard"),
        ("5.1.1", "550 5.1.1 user unknown", "hard"),
        ("5.1.1", "550 5.1.1 <x@example.org>: user unknown; try again later", "hard"),
    ],
)
def test_a_hard_code_with_only_soft_words_is_soft(status: str, text: str, kind: str) -> None:
    # MTAs reuse 5.1.1/5.2.1 loosely: the words must say the address is gone
    assert classify(status, text).kind == kind


def test_broken_mime_is_malformed() -> None:
    data = (
        b"From: MAILER-DAEMON@x.test\r\nSubject: Undelivered Mail\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="nope"\r\n\r\n'
        b"Final-Recipient: rfc822; someone@x.test\r\nStatus: 5.1.1\r\n"
    )
    assert isinstance(read(data), Malformed)

"""The sending engine against a real SMTP server that misbehaves on purpose.

Each case ends with the right journal state, and every deliverable subscriber mailed
exactly once (counted by the server, not by the client).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from kzmail.delivery.engine import Lane, Mode, RetryPolicy, Sender, SendReport
from kzmail.delivery.smtp import RelayConfig, SmtpTransport
from kzmail.models import ANY_LIST, Subscriber
from kzmail.state.journal import Journal
from tests.helpers.servers import FaultHandler, FaultServer, build, fault_server

RUN = "faults"
PEOPLE = [
    Subscriber(email=f"{name}@x.test", name=name.title())
    for name in ("anna", "bert", "cem", "dana", "emil", "fria")
]


def run_sender(
    server: FaultServer,
    journal: Journal,
    *,
    connections: int = 2,
    timeout: float = 2.0,
    policy: RetryPolicy | None = None,
    mode: Mode = "send",
    people: list[Subscriber] = PEOPLE,
) -> SendReport:
    config = RelayConfig(
        host=server.host, port=server.port, tls="none", timeout=timeout, messages_per_connection=3
    )
    lanes = [Lane(SmtpTransport(config)) for _ in range(connections)]
    sender = Sender(
        run_key=RUN,
        envelope_from="news@kzmail.test",
        build=build,
        lanes=lanes,
        log=journal,
        mode=mode,
        rng=random.Random(4),
        policy=policy or RetryPolicy(attempts=3, backoff=0.02, backoff_max=0.1),
    )
    return asyncio.run(sender.run(people))


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(tmp_path / "state")


def statuses(journal: Journal) -> dict[str, str]:
    return {p.email: journal.status(RUN, p.email) or "-" for p in PEOPLE}


def attempts(journal: Journal, address: str) -> int:
    rows = [
        d
        for status in ("sent", "failed", "pending")
        for d in journal.deliveries(RUN, (status,))
        if d.address == address
    ]
    return rows[0].attempts


Case = Callable[[FaultHandler], None]
# case: (script the server, who ends up failed, how many transient retries it takes)
CASES: dict[str, tuple[Case, dict[str, str], int]] = {
    "421 on connect": (lambda h: setattr(h, "refuse_connections", 3), {}, 3),
    "451 on RCPT": (
        lambda h: h.rcpt_faults.update({"bert@x.test": ["451 4.7.1 greylisted, come back later"]}),
        {},
        1,
    ),
    "452 on RCPT twice": (
        lambda h: h.rcpt_faults.update(
            {"cem@x.test": ["452 4.2.2 mailbox full", "452 4.2.2 mailbox full"]}
        ),
        {},
        2,
    ),
    "452 on every RCPT": (
        lambda h: h.rcpt_faults.update({"dana@x.test": ["452 4.2.2 mailbox full"] * 3}),
        {"dana@x.test": "failed"},
        2,
    ),
    "552 at DATA": (
        lambda h: h.data_faults.update({"emil@x.test": ["552 5.3.4 message too big"]}),
        {"emil@x.test": "failed"},
        0,
    ),
    "550 no such user": (
        lambda h: h.rcpt_faults.update({"fria@x.test": ["550 5.1.1 no such user here"]}),
        {"fria@x.test": "failed"},
        0,
    ),
    "drop mid-DATA": (lambda h: h.data_faults.update({"anna@x.test": ["drop"]}), {}, 1),
    "stall at DATA": (lambda h: h.data_faults.update({"cem@x.test": ["stall"]}), {}, 1),
}


# every case both ways: one command per round trip, and MAIL+RCPT+DATA pipelined
BOTH = pytest.mark.parametrize("pipelining", [False, True], ids=["one-by-one", "pipelined"])


@BOTH
@pytest.mark.parametrize("case", list(CASES))
def test_fault_ends_in_the_right_state_and_mails_everyone_once(
    case: str, pipelining: bool, journal: Journal
) -> None:
    script, expected_failures, retries = CASES[case]
    handler = FaultHandler(stall_seconds=1.5, pipelining=pipelining)
    script(handler)
    with fault_server(handler) as server:
        report = run_sender(server, journal, timeout=0.6)
    expected = {p.email: expected_failures.get(p.email, "sent") for p in PEOPLE}
    assert statuses(journal) == expected
    for person in PEOPLE:
        assert handler.received(person.email) == (expected[person.email] == "sent"), person
    assert report.sent == sum(1 for s in expected.values() if s == "sent")
    assert report.failed == len(expected_failures)
    assert report.paused is None
    assert report.retried == retries
    # every message that arrived is the one the journal recorded for it
    sent = {d.address: d for d in journal.deliveries(RUN, ("sent",))}
    for arrival in handler.arrivals:
        assert sent[arrival.recipient].message_id == arrival.message_id


@BOTH
def test_transient_failures_are_retried_on_a_fresh_connection(
    pipelining: bool, journal: Journal
) -> None:
    handler = FaultHandler(pipelining=pipelining)
    handler.rcpt_faults["bert@x.test"] = ["451 4.7.1 later", "451 4.7.1 later"]
    with fault_server(handler) as server:
        report = run_sender(server, journal, connections=1)
    assert attempts(journal, "bert@x.test") == 3
    assert report.retried == 2
    assert handler.received("bert@x.test") == 1


@BOTH
def test_permanent_failures_keep_code_and_text_and_are_not_retried(
    pipelining: bool, journal: Journal
) -> None:
    handler = FaultHandler(pipelining=pipelining)
    handler.data_faults["emil@x.test"] = ["552 5.3.4 message too big"]
    handler.rcpt_faults["fria@x.test"] = ["550 5.1.1 no such user here"]
    handler.rcpt_faults["dana@x.test"] = ["550 5.7.1 policy says no"]
    with fault_server(handler) as server:
        run_sender(server, journal)
    failed = {d.address: d for d in journal.deliveries(RUN, ("failed",))}
    assert failed["emil@x.test"].code == 552
    assert "message too big" in failed["emil@x.test"].detail
    assert failed["emil@x.test"].attempts == 1
    assert not failed["emil@x.test"].retryable
    # only "no such user" suppresses the address; a policy refusal does not
    assert journal.is_suppressed(ANY_LIST, "fria@x.test")
    assert not journal.is_suppressed(ANY_LIST, "dana@x.test")
    assert not journal.is_suppressed(ANY_LIST, "emil@x.test")


def test_retry_mode_re_attempts_only_transient_failures(journal: Journal) -> None:
    handler = FaultHandler()
    handler.rcpt_faults["dana@x.test"] = ["452 4.2.2 mailbox full"] * 3
    handler.data_faults["emil@x.test"] = ["552 5.3.4 message too big"]
    with fault_server(handler) as server:
        first = run_sender(server, journal)
        assert journal.retryable(RUN, "dana@x.test")
        second = run_sender(server, journal, mode="retry")
        third = run_sender(server, journal)
    assert (first.sent, first.failed, first.retryable) == (4, 2, 1)
    assert (second.sent, second.failed) == (1, 0)
    assert third.sent == 0
    assert third.skipped == len(PEOPLE)
    assert statuses(journal)["dana@x.test"] == "sent"
    assert statuses(journal)["emil@x.test"] == "failed"
    assert handler.received("dana@x.test") == 1
    assert handler.received("emil@x.test") == 0
    assert len(handler.arrivals) == 5


@BOTH
def test_consecutive_failures_pause_the_send_instead_of_burning_the_list(
    pipelining: bool, journal: Journal
) -> None:
    people = [Subscriber(email=f"p{i}@x.test") for i in range(40)]
    handler = FaultHandler(pipelining=pipelining)
    for person in people:
        handler.rcpt_faults[person.email] = ["451 4.3.0 queue trouble"] * 10
    with fault_server(handler) as server:
        report = run_sender(
            server,
            journal,
            people=people,
            policy=RetryPolicy(attempts=5, backoff=0.01, pause_after=6),
        )
    assert report.paused is not None
    assert "6 failed attempts in a row" in report.paused
    assert "451 4.3.0 queue trouble" in report.paused
    counts = journal.counts(RUN)
    assert counts.get("failed", 0) <= 2  # the list was not burnt
    assert counts.get("sending", 0) == 0
    assert handler.arrivals == []


def test_a_relay_that_refuses_us_pauses_at_once(journal: Journal) -> None:
    handler = FaultHandler(refuse_connections=100, greeting_fault="554 5.7.1 go away")
    with fault_server(handler) as server:
        report = run_sender(server, journal)
    assert report.paused is not None
    assert "554 5.7.1 go away" in report.paused
    assert report.failed == 0
    assert "failed" not in journal.counts(RUN)

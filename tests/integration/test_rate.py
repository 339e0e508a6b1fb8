"""Rate limits proven from the server's own arrival timestamps, not from the client's word."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from kzmail.delivery.engine import Lane, RetryPolicy, Sender
from kzmail.delivery.ratelimit import Gate, RateLimiter, Window
from kzmail.delivery.smtp import RelayConfig, SmtpTransport
from kzmail.models import Subscriber
from kzmail.state.journal import Journal
from tests.helpers.servers import FaultHandler, FaultServer, build, fault_server


def most_in_any_window(times: list[float], seconds: float) -> int:
    """The largest number of arrivals inside any half-open window of that length."""
    times = sorted(times)
    return max(
        (sum(1 for t in times[i:] if t < start + seconds) for i, start in enumerate(times)),
        default=0,
    )


def send_all(
    server: FaultServer,
    journal: Journal,
    people: list[Subscriber],
    limiters: list[RateLimiter],
    connections: int,
) -> None:
    config = RelayConfig(host=server.host, port=server.port, tls="none", timeout=5.0)
    gate = Gate(limiters)
    lanes = [Lane(SmtpTransport(config), gate) for _ in range(connections)]
    sender = Sender(
        run_key="rate",
        envelope_from="news@kzmail.test",
        build=build,
        lanes=lanes,
        log=journal,
        policy=RetryPolicy(attempts=1),
    )
    report = asyncio.run(sender.run(people))
    assert report.sent == len(people)


def test_no_sliding_window_ever_exceeds_its_limit(tmp_path: Path) -> None:
    windows: list[Window] = [(5, 1.0), (12, 3.0)]
    people = [Subscriber(email=f"r{i}@x.test") for i in range(22)]
    jitter = random.Random(7)
    # transactions of very different lengths: the quick ones must not bunch up arrivals
    handler = FaultHandler(data_delay=lambda: jitter.choice([0.0, 0.0, 0.02, 0.3, 0.7]))
    with fault_server(handler) as server:
        send_all(server, Journal(tmp_path), people, [RateLimiter(windows)], connections=4)
    times = [a.at for a in handler.arrivals]
    assert len(times) == len(people)
    for count, seconds in windows:
        assert most_in_any_window(times, seconds) <= count, (count, seconds)
    # and the limits were actually reached, not just undershot by a slow run
    assert most_in_any_window(times, 3.0) >= 10


def test_the_limit_survives_a_restart_through_the_journal(tmp_path: Path) -> None:
    window: Window = (4, 2.0)
    journal = Journal(tmp_path)
    handler = FaultHandler()

    def limiter() -> RateLimiter:  # what service_send builds: history in, stamps out
        return RateLimiter(
            [window],
            history=journal.rate_history("relay t", 2.0),
            on_stamp=lambda at: journal.add_rate_stamp("relay t", at),
        )

    with fault_server(handler) as server:
        for run in range(2):
            people = [Subscriber(email=f"run{run}-{i}@x.test") for i in range(4)]
            send_all(server, journal, people, [limiter()], connections=2)
    times = [a.at for a in handler.arrivals]
    assert len(times) == 8
    assert most_in_any_window(times, 2.0) <= 4
    assert max(times) - min(times) >= 1.9

"""The rate limiter's arithmetic, with an injected clock (real time is in the rate test)."""

from __future__ import annotations

import asyncio
import math
import time

from kzmail.delivery.ratelimit import DAY, Gate, RateLimiter, windows_for
from kzmail.models import RateSettings


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_every_configured_limit_becomes_a_window() -> None:
    rate = RateSettings(per_second=14, per_minute=600, per_hour=20000, per_day=50000)
    assert windows_for(rate) == [(14, 1.0), (600, 60.0), (20000, 3600.0), (50000, DAY)]
    assert windows_for(RateSettings(per_second=0.5)) == [(1, 2.0)]
    assert windows_for(RateSettings()) == []


def test_a_window_counts_transactions_in_flight_and_remembers_their_end() -> None:
    clock = FakeClock()
    limiter = RateLimiter([(2, 1.0)], clock=clock)
    limiter.take()
    limiter.take()
    assert limiter.wait_time(clock.now) == math.inf  # two in flight: wait for an end
    clock.now += 5.0  # a slow transaction...
    limiter.release(clock.now)
    # one in flight, one ended just now: room when that end leaves the window, not before
    assert limiter.wait_time(clock.now) == 1.0
    limiter.release(clock.now + 0.25)
    # both ended at 1005.0 and 1005.25: the window frees one second after the first end
    assert limiter.wait_time(clock.now + 0.5) == 0.5


def test_a_gate_waits_until_every_limiter_has_room() -> None:
    clock = FakeClock()
    fast = RateLimiter([(3, 1.0)], clock=clock)
    slow = RateLimiter([(4, 10.0)], clock=clock)
    gate = Gate([fast, slow], clock=clock, sleep=clock.sleep)
    starts: list[float] = []

    async def go() -> None:
        for _ in range(8):
            await gate.acquire()
            starts.append(clock.now)
            gate.release()

    asyncio.run(go())
    assert starts[:3] == [1000.0] * 3
    assert 1001.0 <= starts[3] < 1001.001
    assert all(start >= 1010.0 for start in starts[4:])
    for i, start in enumerate(starts):  # no 10 s window holds more than 4
        assert sum(1 for s in starts if start <= s < start + 10.0) <= 4, i


def test_history_from_the_journal_keeps_a_restart_inside_the_window() -> None:
    wall = time.time()
    limiter = RateLimiter([(3, 60.0)], history=[wall - 50, wall - 40, wall - 30])
    assert 9.0 < limiter.wait_time(time.monotonic()) <= 10.5
    stamped: list[float] = []
    fresh = RateLimiter([(3, 60.0)], history=[wall - 61], on_stamp=stamped.append)
    assert fresh.wait_time(time.monotonic()) == 0
    fresh.take()
    fresh.release(time.monotonic())
    assert abs(stamped[0] - time.time()) < 1.0


def test_no_limits_never_waits() -> None:
    gate = Gate([RateLimiter([])])

    async def go() -> None:
        for _ in range(1000):
            await gate.acquire()
            gate.release()

    asyncio.run(go())


async def test_float_rounding_never_lets_one_more_into_a_full_window() -> None:
    # 1.0000000000000002 + 1.0 == 2.0 in floating point: a wait computed as
    # `stamp + seconds - now` is 0 at now == 2.0 although that stamp is still in the window.
    class Clock:
        now = 0.0

        def __call__(self) -> float:
            return self.now

        async def sleep(self, seconds: float) -> None:
            self.now += seconds

    clock = Clock()
    limiter = RateLimiter([(3, 1.0)], clock=clock)
    gate = Gate([limiter], clock=clock, sleep=clock.sleep)
    ends = []
    for _ in range(12):
        await gate.acquire()
        gate.release()  # an instant transaction: it ends where it starts
        ends.append(clock.now)
    for i, start in enumerate(ends):
        assert sum(1 for t in ends[i:] if t - start < 1.0) <= 3, ends

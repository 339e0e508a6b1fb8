"""The shared limiter, driven by a fake clock: no window ever holds more than its limit."""

from __future__ import annotations

import asyncio

from kzmail.models import RateSettings
from kzmail.ratelimit import RateLimiter, windows_for


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def _max_in_window(stamps: list[float], seconds: float) -> int:
    return max(sum(1 for t in stamps if start <= t < start + seconds) for start in stamps)


async def test_every_window_holds_at_once() -> None:
    clock = FakeClock()
    limiter = RateLimiter([(5, 1.0), (12, 10.0)], clock=clock, sleep=clock.sleep)
    stamps = []
    for _ in range(40):
        await limiter.acquire()
        stamps.append(clock.now)
    assert _max_in_window(stamps, 1.0) <= 5
    assert _max_in_window(stamps, 10.0) <= 12
    assert stamps[-1] >= 30.0  # 40 sends at 12 per 10 s cannot finish sooner


async def test_concurrent_callers_share_one_limit() -> None:
    clock = FakeClock()
    limiter = RateLimiter([(3, 1.0)], clock=clock, sleep=clock.sleep)
    stamps: list[float] = []

    async def worker() -> None:
        for _ in range(5):
            await limiter.acquire()
            stamps.append(clock.now)

    await asyncio.gather(*(worker() for _ in range(4)))
    assert len(stamps) == 20
    assert _max_in_window(stamps, 1.0) <= 3


def test_windows_from_campaign_rate() -> None:
    assert windows_for(RateSettings(per_second=0, per_hour=0, connections=1)) == []
    assert windows_for(RateSettings(per_second=14, per_hour=0, connections=1)) == [(14, 1.0)]
    assert windows_for(RateSettings(per_second=0.5, per_hour=100, connections=1)) == [
        (1, 2.0), (100, 3600.0)]

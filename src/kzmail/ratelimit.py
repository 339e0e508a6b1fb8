"""One shared rate limiter, checked right before each SMTP transaction.

Each limit is a sliding window (`count` sends per `seconds`); all of them hold at once.
The clock and the sleep are injected so tests can drive time.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable

from .models import RateSettings

Window = tuple[int, float]
_MIN_WAIT = 1e-6


def windows_for(rate: RateSettings) -> list[Window]:
    """The sliding windows a campaign's `rate:` asks for (0 or absent = unlimited)."""
    windows: list[Window] = []
    if rate.per_second > 0:
        if rate.per_second >= 1 and float(rate.per_second).is_integer():
            windows.append((int(rate.per_second), 1.0))
        else:
            windows.append((1, 1.0 / rate.per_second))
    if rate.per_hour > 0:
        windows.append((rate.per_hour, 3600.0))
    return windows


class RateLimiter:
    """Waits until one more send fits inside every window, then records it."""

    def __init__(self, windows: Iterable[Window], *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        self._windows = [(count, seconds, deque[float]()) for count, seconds in windows
                         if count > 0]
        self._clock = clock
        self._sleep = sleep
        self._lock = asyncio.Lock()

    def _wait_time(self, now: float) -> float:
        # Expiry and wait use the same expression, `now - stamp`: with `stamp + seconds`
        # float rounding can make the wait 0 for a stamp that has not expired.
        wait = 0.0
        for count, seconds, stamps in self._windows:
            while stamps and now - stamps[0] >= seconds:
                stamps.popleft()
            if len(stamps) >= count:
                wait = max(wait, seconds - (now - stamps[0]), _MIN_WAIT)
        return wait

    async def acquire(self) -> None:
        """Return when a send is allowed; concurrent callers queue fairly on one lock."""
        if not self._windows:
            return
        async with self._lock:
            while (wait := self._wait_time(self._clock())) > 0:
                await self._sleep(wait)
            now = self._clock()
            for _, _, stamps in self._windows:
                stamps.append(now)

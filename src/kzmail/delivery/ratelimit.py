"""Rate limits that hold: sliding windows checked right before each SMTP transaction.

Each limit is a sliding window (`count` messages per `seconds`); every window of a limiter
holds at once, and several limiters (a relay's own and the campaign-wide one) are taken
together, atomically, by a `Gate`.

Why a slot lasts the whole transaction: a message *arrives* at the relay somewhere
between the start and the end of its transaction. A limiter that only stamped starts
would let arrivals bunch when one slow transaction is overtaken by quick ones. So a
transaction in flight counts inside every window, and what is remembered afterwards is
its *end*. Then any window of arrivals, of any position, holds at most `count`:
for the window's latest-started message, every other arrival in it ended within
`seconds` before that start, and was counted when it started.

The clock and the sleep are injected so tests can drive time. Ends are handed to
`on_stamp` (wall-clock seconds) so the journal can persist them, and a restart inside
the hour does not reset the hour: `history` feeds them back in.
"""

from __future__ import annotations

import asyncio
import math
import time
from bisect import bisect_right
from collections.abc import Awaitable, Callable, Iterable, Sequence

from kzmail.models import RateSettings

Window = tuple[int, float]
DAY = 86400.0
_MIN_WAIT = 1e-6


def windows_for(rate: RateSettings) -> list[Window]:
    """The sliding windows a `rate:` block asks for (0 or absent = unlimited)."""
    windows: list[Window] = []
    if rate.per_second > 0:
        if rate.per_second >= 1 and float(rate.per_second).is_integer():
            windows.append((int(rate.per_second), 1.0))
        else:
            windows.append((1, 1.0 / rate.per_second))
    for count, seconds in ((rate.per_minute, 60.0), (rate.per_hour, 3600.0), (rate.per_day, DAY)):
        if count > 0:
            windows.append((count, seconds))
    return windows


class RateLimiter:
    """One set of sliding windows: in-flight transactions plus remembered ends."""

    def __init__(
        self,
        windows: Iterable[Window],
        *,
        clock: Callable[[], float] = time.monotonic,
        history: Iterable[float] = (),
        on_stamp: Callable[[float], None] | None = None,
    ) -> None:
        self.windows = sorted((count, seconds) for count, seconds in windows if count > 0)
        self._clock = clock
        self._span = max((seconds for _, seconds in self.windows), default=0.0)
        # wall = monotonic + offset; persisted stamps are wall-clock, ours are monotonic
        self._offset = time.time() - clock()
        self._stamps = sorted(wall - self._offset for wall in history)
        self._first = 0
        self._in_flight = 0
        self._on_stamp = on_stamp
        self._released = asyncio.Event()

    @property
    def limited(self) -> bool:
        return bool(self.windows)

    def wait_time(self, now: float) -> float:
        """Seconds until one more transaction fits every window (inf: until one ends)."""
        if not self.windows:
            return 0.0
        self._expire(now)
        wait = 0.0
        for count, seconds in self.windows:
            start = bisect_right(self._stamps, now - seconds, lo=self._first)
            in_window = len(self._stamps) - start
            excess = self._in_flight + in_window - count + 1
            if excess <= 0:
                continue
            if excess > in_window:
                return math.inf  # only a transaction in flight ending can make room
            # A full window must make us wait: `stamp + seconds - now` can round to 0 while
            # that stamp is still inside the window (1.0000000000000002 + 1.0 == 2.0).
            wait = max(wait, self._stamps[start + excess - 1] + seconds - now, _MIN_WAIT)
        return wait

    def _expire(self, now: float) -> None:
        self._first = bisect_right(self._stamps, now - self._span, lo=self._first)
        if self._first > 4096 and self._first * 2 > len(self._stamps):
            del self._stamps[: self._first]
            self._first = 0

    def take(self) -> None:
        self._in_flight += 1

    def release(self, now: float) -> None:
        """A transaction ended at `now` (sent or not): remember its end."""
        self._in_flight -= 1
        if self.windows:
            if self._stamps and now < self._stamps[-1]:
                now = self._stamps[-1]  # keep the list sorted whatever the clock does
            self._stamps.append(now)
            if self._on_stamp is not None:
                self._on_stamp(now + self._offset)
        self._released.set()
        self._released = asyncio.Event()

    async def released(self) -> None:
        await self._released.wait()


class Gate:
    """Takes a slot in several limiters at once, right before a transaction."""

    def __init__(
        self,
        limiters: Sequence[RateLimiter],
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self._limiters = [limiter for limiter in limiters if limiter.limited]
        self._clock = clock
        self._sleep = sleep

    async def acquire(self) -> None:
        """Return when one more transaction fits every window of every limiter."""
        while True:
            now = self._clock()
            waits = [(limiter.wait_time(now), limiter) for limiter in self._limiters]
            longest = max(waits, key=lambda item: item[0], default=(0.0, None))
            if longest[0] <= 0:
                for limiter in self._limiters:
                    limiter.take()
                return
            if longest[0] == math.inf and longest[1] is not None:
                await longest[1].released()
            else:
                await self._sleep(math.nextafter(longest[0], math.inf))

    def release(self) -> None:
        now = self._clock()
        for limiter in self._limiters:
            limiter.release(now)

"""Send one message per subscriber over a few reused connections, under one rate limit.

The pipeline sees only small protocols (`Transport`, `DeliveryLog`), never SMTP or SQL:
a producer feeds subscribers into a bounded queue; `connections` workers each own one
transport, build the message just before sending it, wait for the shared limiter and
record every outcome in the journal the moment it is known.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from .errors import DeliveryError, PermanentDeliveryError
from .message import Outgoing
from .models import Subscriber
from .ratelimit import RateLimiter


class Transport(Protocol):
    async def open(self) -> None: ...
    async def send(self, sender: str, recipient: str, data: bytes) -> str: ...
    async def close(self) -> None: ...


class DeliveryLog(Protocol):
    def status(self, campaign: str, address: str) -> str | None: ...
    def mark(self, campaign: str, address: str, status: str, *, code: int | None = None,
             detail: str | None = None, message_id: str | None = None) -> None: ...


@dataclass
class SendReport:
    """What happened: counts, and who failed with which reply."""

    sent: int = 0
    failed: int = 0
    skipped: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Progress:
    """One finished subscriber, for progress bars."""

    address: str
    outcome: str          # sent | failed


class Sender:
    """Runs one campaign's deliveries; build, transports and journal are injected."""

    def __init__(self, *, run_key: str, envelope_from: str,
                 build: Callable[[Subscriber], Outgoing],
                 transports: list[Transport], limiter: RateLimiter, log: DeliveryLog,
                 on_progress: Callable[[Progress], None] = lambda _: None) -> None:
        self._run_key = run_key
        self._from = envelope_from
        self._build = build
        self._transports = transports
        self._limiter = limiter
        self._log = log
        self._on_progress = on_progress
        self.report = SendReport()

    async def _worker(self, transport: Transport, queue: asyncio.Queue[Subscriber | None]) -> None:
        while (subscriber := await queue.get()) is not None:
            message = self._build(subscriber)
            await self._limiter.acquire()
            self._log.mark(self._run_key, subscriber.email, "sending",
                           message_id=message.message_id)
            try:
                reply = await transport.send(self._from, message.recipient, message.data)
            except DeliveryError as exc:
                status = "failed"
                self._log.mark(self._run_key, subscriber.email, status, code=exc.code,
                               detail=str(exc))
                self.report.failed += 1
                self.report.failures.append((subscriber.email, str(exc)))
            else:
                status = "sent"
                self._log.mark(self._run_key, subscriber.email, status, code=250, detail=reply)
                self.report.sent += 1
            self._on_progress(Progress(subscriber.email, status))

    async def run(self, subscribers: Iterable[Subscriber]) -> SendReport:
        """Deliver to every subscriber not already sent in this run; return the report."""
        await asyncio.gather(*(t.open() for t in self._transports))
        queue: asyncio.Queue[Subscriber | None] = asyncio.Queue(maxsize=4 * len(self._transports))
        workers = [asyncio.create_task(self._worker(t, queue)) for t in self._transports]
        try:
            for subscriber in subscribers:
                if self._log.status(self._run_key, subscriber.email) == "sent":
                    self.report.skipped += 1
                    continue
                await self._feed(queue, subscriber, workers)
            for _ in workers:
                await self._feed(queue, None, workers)
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            await asyncio.gather(*(t.close() for t in self._transports), return_exceptions=True)
        return self.report

    @staticmethod
    async def _feed(queue: asyncio.Queue[Subscriber | None], item: Subscriber | None,
                    workers: list[asyncio.Task[None]]) -> None:
        """Put `item` on the queue, but surface a worker's crash instead of waiting forever."""
        put = asyncio.ensure_future(queue.put(item))
        done, _ = await asyncio.wait([put, *workers], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is not put and task.exception() is not None:
                put.cancel()
                raise task.exception()  # type: ignore[misc]
        if put not in done:
            await put


__all__ = ["PermanentDeliveryError", "Progress", "SendReport", "Sender", "Transport"]

"""Send one message per subscriber over a few reused connections, under shared rate limits.

The pipeline sees only small protocols (`Transport`, `Limiter`, `DeliveryLog`), never SMTP
or SQL: a producer feeds the subscribers still to be mailed into a bounded queue; one
worker per connection ("lane") builds the message just before sending it (a message to be
sealed, e.g. DKIM-signed elsewhere, is built and sent off for sealing as it is queued, so
signatures are made while earlier messages go out), waits for the lane's rate gate,
records `sending` in the journal, runs the SMTP transaction (the mark is committed, with
whatever the other lanes marked meanwhile, after the relay accepted MAIL, RCPT and DATA
and before the message goes out: a crash before that point delivers nothing) and records
the outcome (`sent` only after the relay's 250 for DATA).

Transient failures (4xx, timeouts, drops) are retried on a fresh connection after an
exponential backoff with jitter, up to `RetryPolicy.attempts`; permanent ones are recorded
and not retried. Too many failed attempts in a row, or a relay that refuses us outright
(e.g. authentication) or cannot be reached at all (refused connection, unknown host, a
certificate that does not verify), pause the send instead of burning the list. `stop()`
(Ctrl-C) lets transactions in flight finish and be recorded, then returns.
The engine does not care what the bytes are (signed by DKIM or not): `build` decides.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from kzmail.errors import (
    DeliveryError,
    PermanentDeliveryError,
    UnknownRecipientError,
    UnreachableRelayError,
)
from kzmail.models import ANY_LIST, Subscriber
from kzmail.render.message import Outgoing

Mode = Literal["send", "retry"]


class Transport(Protocol):
    async def open(self) -> None: ...
    async def send(
        self,
        sender: str,
        recipient: str,
        data: bytes,
        *,
        wire_safe: bool = False,
        ready: Callable[[], Awaitable[None]] | None = None,
    ) -> str: ...
    async def close(self) -> None: ...


class Limiter(Protocol):
    async def acquire(self) -> None: ...
    def release(self) -> None: ...


class NoLimit:
    """A gate that never waits."""

    async def acquire(self) -> None:
        return None

    def release(self) -> None:
        return None


class DeliveryLog(Protocol):
    def status(self, campaign: str, address: str) -> str | None: ...
    def retryable(self, campaign: str, address: str) -> bool: ...
    def mark(
        self,
        campaign: str,
        address: str,
        status: str,
        *,
        code: int | None = None,
        detail: str | None = None,
        message_id: str | None = None,
        name: str | None = None,
        retryable: bool = False,
        durable: bool = True,
    ) -> None: ...
    def suppress(self, list_id: str, address: str, reason: str) -> None: ...
    def has_deliveries(self, campaign: str) -> bool: ...
    def flush(self) -> None: ...
    async def committed(self) -> None: ...


# a subscriber on the queue, with their message being sealed (signed) already, if it is
_Item = tuple[Subscriber, "asyncio.Future[Outgoing] | None"]


@dataclass(frozen=True)
class Lane:
    """One connection and the rate gate it must pass before each transaction."""

    transport: Transport
    limiter: Limiter = field(default_factory=NoLimit)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    backoff: float = 2.0
    backoff_max: float = 120.0
    pause_after: int = 10

    def delay(self, failed_attempts: int, rng: random.Random) -> float:
        """Exponential backoff with jitter (between half and all of the step)."""
        step = min(self.backoff_max, self.backoff * 2.0 ** (failed_attempts - 1))
        return step * (0.5 + rng.random() / 2)


@dataclass
class SendReport:
    """What happened: counts, who failed with which reply, and why the run stopped early."""

    sent: int = 0
    failed: int = 0
    retryable: int = 0  # failed for a temporary reason: `kzmail retry` may help
    skipped: int = 0
    uncertain: int = 0  # skipped because a crash left them uncertain
    retried: int = 0
    suppressed: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    interrupted: bool = False
    paused: str | None = None


@dataclass(frozen=True)
class Progress:
    """One finished subscriber, for progress bars."""

    address: str


class Sender:
    """Runs one campaign's deliveries; build, lanes and journal are injected."""

    def __init__(
        self,
        *,
        run_key: str,
        envelope_from: str,
        build: Callable[[Subscriber], Outgoing],
        lanes: list[Lane],
        log: DeliveryLog,
        policy: RetryPolicy | None = None,
        mode: Mode = "send",
        resend_uncertain: bool = False,
        rng: random.Random | None = None,
        on_progress: Callable[[Progress], None] = lambda _: None,
        seal: Callable[[Outgoing], Awaitable[Outgoing]] | None = None,
    ) -> None:
        self._run_key = run_key
        self._from = envelope_from
        self._build = build
        self._seal = seal  # e.g. DKIM-signs in another process while the loop goes on
        self._lanes = lanes
        self._log = log
        self._policy = policy or RetryPolicy()
        self._mode = mode
        self._resend_uncertain = resend_uncertain
        self._rng = rng or random.Random()
        self._on_progress = on_progress
        self._consecutive = 0
        self._stopped = asyncio.Event()
        self._fresh = False
        self.report = SendReport()

    # control --------------------------------------------------------------------------
    def stop(self, reason: str | None = None) -> None:
        """Stop feeding; transactions in flight finish and are recorded (Ctrl-C, pause)."""
        if self._stopped.is_set():
            return
        if reason is None:
            self.report.interrupted = True
        else:
            self.report.paused = reason
        self._stopped.set()

    @property
    def stopping(self) -> bool:
        return self._stopped.is_set()

    # selection ------------------------------------------------------------------------
    def _wanted(self, subscriber: Subscriber) -> bool:
        if self._fresh:
            return self._mode == "send"
        status = self._log.status(self._run_key, subscriber.email)
        if self._mode == "retry":
            return status == "failed" and self._log.retryable(self._run_key, subscriber.email)
        if status is None or status == "pending":
            return True
        if status == "failed" and self._log.retryable(self._run_key, subscriber.email):
            return True  # a temporary failure of an earlier run: a resumed send tries again
        if status == "uncertain":
            if self._resend_uncertain:
                return True
            self.report.uncertain += 1
        self.report.skipped += 1
        return False

    # one subscriber -------------------------------------------------------------------
    def _ahead(self, subscriber: Subscriber) -> asyncio.Future[Outgoing] | None:
        """With a `seal`: build now and start sealing, so the signature is made while the
        lanes send earlier messages (the signing process never idles waiting for a lane)."""
        if self._seal is None:
            return None
        return asyncio.ensure_future(self._seal(self._build(subscriber)))

    async def _deliver(
        self, lane: Lane, subscriber: Subscriber, sealed: asyncio.Future[Outgoing] | None
    ) -> None:
        message = self._build(subscriber) if sealed is None else await sealed
        attempt = 0
        while not self.stopping:
            attempt += 1
            await lane.limiter.acquire()
            if self.stopping:
                lane.limiter.release()
                return
            self._log.mark(
                self._run_key,
                subscriber.email,
                "sending",
                message_id=message.message_id,
                name=subscriber.name,
                durable=False,
            )
            try:
                # `sending` is on disk before the message goes out: committed (with the
                # other lanes' marks) while the relay answers MAIL, RCPT and DATA
                reply = await lane.transport.send(
                    message.envelope_from or self._from,
                    message.recipient,
                    message.data,
                    wire_safe=message.wire_safe,
                    ready=self._log.committed,
                )
            except DeliveryError as exc:
                lane.limiter.release()
                if not await self._failed(subscriber, exc, attempt):
                    return
            else:
                lane.limiter.release()
                self._log.mark(
                    self._run_key, subscriber.email, "sent", code=250, detail=reply, durable=False
                )
                self._consecutive = 0
                self.report.sent += 1
                self._on_progress(Progress(subscriber.email))
                return

    async def _failed(self, subscriber: Subscriber, exc: DeliveryError, attempt: int) -> bool:
        """Record a failed attempt; True if it is to be tried again (after the backoff)."""
        email, detail = subscriber.email, str(exc)
        self._consecutive += 1
        permanent = isinstance(exc, PermanentDeliveryError)
        unreachable = isinstance(exc, UnreachableRelayError)
        if unreachable or (permanent and exc.stage in ("connect", "mail")):
            # the relay refuses us (or cannot be reached), not this recipient: nobody else
            # would fare better, so pause now rather than after `pause_after` attempts
            self._log.mark(self._run_key, email, "pending", code=exc.code, detail=detail)
            self.stop(detail if unreachable else f"the relay refuses to take mail: {detail}")
            return False
        if permanent or attempt >= self._policy.attempts:
            self._log.mark(
                self._run_key,
                email,
                "failed",
                code=exc.code,
                detail=detail,
                retryable=not permanent,
            )
            self.report.failed += 1
            self.report.retryable += not permanent
            self.report.failures.append((email, detail))
            if isinstance(exc, UnknownRecipientError):
                self._log.suppress(ANY_LIST, email, f"bounced: {detail}")
                self.report.suppressed += 1
            self._on_progress(Progress(email))
            self._check_pause(detail)
            return False
        self._log.mark(
            self._run_key, email, "pending", code=exc.code, detail=detail, retryable=True
        )
        self.report.retried += 1
        self._check_pause(detail)
        if self.stopping:
            return False
        delay = self._policy.delay(attempt, self._rng)
        try:
            await asyncio.wait_for(self._stopped.wait(), timeout=delay)
        except TimeoutError:
            return True
        return False

    def _check_pause(self, detail: str) -> None:
        if self._consecutive >= self._policy.pause_after:
            self.stop(f"{self._consecutive} failed attempts in a row, the last: {detail}")

    # the run --------------------------------------------------------------------------
    async def _worker(self, lane: Lane, queue: asyncio.Queue[_Item | None]) -> None:
        while (item := await queue.get()) is not None:
            subscriber, sealed = item
            if not self.stopping:
                await self._deliver(lane, subscriber, sealed)
            else:
                _discard(item)

    async def run(self, subscribers: Iterable[Subscriber]) -> SendReport:
        """Deliver to every subscriber still to be mailed in this run; return the report."""
        self._fresh = not self._log.has_deliveries(self._run_key)
        queue: asyncio.Queue[_Item | None] = asyncio.Queue(maxsize=4 * len(self._lanes))
        workers = [asyncio.create_task(self._worker(lane, queue)) for lane in self._lanes]
        try:
            for subscriber in subscribers:
                if self.stopping:
                    break
                if self._wanted(subscriber):
                    await self._feed(queue, (subscriber, self._ahead(subscriber)), workers)
            for _ in workers:
                await self._feed(queue, None, workers)
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()
            while not queue.empty():  # left when stopped: nothing of them was sent
                _discard(queue.get_nowait())
            await asyncio.gather(*workers, return_exceptions=True)
            await asyncio.gather(
                *(lane.transport.close() for lane in self._lanes), return_exceptions=True
            )
            self._log.flush()
        return self.report

    @staticmethod
    async def _feed(
        queue: asyncio.Queue[_Item | None], item: _Item | None, workers: list[asyncio.Task[None]]
    ) -> None:
        """Put `item` on the queue, but surface a worker's crash instead of waiting forever."""
        if not queue.full():
            queue.put_nowait(item)
            return
        put = asyncio.ensure_future(queue.put(item))
        done, _ = await asyncio.wait([put, *workers], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is not put and task.exception() is not None:
                put.cancel()
                _discard(item)
                raise task.exception()  # type: ignore[misc]
        if put not in done:
            await put


def _discard(item: _Item | None) -> None:
    """An item that will not be sent: stop its sealing, or take its error (a signing
    process that died), so nothing is left pending or unretrieved."""
    sealed = None if item is None else item[1]
    if sealed is None:
        return
    if not sealed.done():
        sealed.cancel()
    elif not sealed.cancelled():
        sealed.exception()


__all__ = [
    "Lane",
    "PermanentDeliveryError",
    "Progress",
    "RetryPolicy",
    "SendReport",
    "Sender",
    "Transport",
]

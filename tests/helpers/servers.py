"""Real SMTP servers that misbehave on purpose, for the sending engine's tests.

`FaultServer` is a real aiosmtpd server on a free loopback port, in its own thread and
event loop, with a handler whose replies are scripted per recipient: answer 4xx/5xx at
RCPT or DATA, drop the connection mid-DATA, stall beyond the client's timeout. The first
`refuse_connections` connections are greeted with 421 and closed. With `pipelining`
it advertises PIPELINING, so the client sends MAIL, RCPT and DATA in one go. Every accepted message
is recorded with its arrival time (taken when the message is complete, before the 250).
"""

from __future__ import annotations

import asyncio
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from kzmail.models import Subscriber
from kzmail.render.message import Outgoing
from tests.helpers.smtp import offer_pipelining

MESSAGE_ID = re.compile(rb"^Message-ID:\s*(<[^>]+>)", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class Arrival:
    recipient: str
    message_id: str
    at: float
    data: bytes = b""


@dataclass
class FaultHandler:
    """Scripted replies: each list is consumed one entry per attempt, then all is well."""

    rcpt_faults: dict[str, list[str]] = field(default_factory=dict)
    data_faults: dict[str, list[str]] = field(default_factory=dict)
    refuse_connections: int = 0
    greeting_fault: str = "421 4.3.2 too busy, try again later"
    stall_seconds: float = 2.0
    data_delay: Callable[[], float] = lambda: 0.0  # how long each DATA takes to answer
    pipelining: bool = False  # advertise PIPELINING (RFC 2920)
    arrivals: list[Arrival] = field(default_factory=list)
    connections: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def received(self, recipient: str) -> int:
        return sum(1 for a in self.arrivals if a.recipient == recipient)

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        return offer_pipelining(session, hostname, responses, self.pipelining)

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        faults = self.rcpt_faults.get(address)
        if faults:
            return faults.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        recipient = envelope.rcpt_tos[0]
        faults = self.data_faults.get(recipient)
        fault = faults.pop(0) if faults else None
        if fault == "drop":
            assert server.transport is not None
            server.transport.close()  # the connection dies before any reply
            return "421 gone"
        if fault == "stall":
            await asyncio.sleep(self.stall_seconds)
            if server.transport is None or server.transport.is_closing():
                return "451 client gone"  # nobody to tell: the message is not kept
        elif fault is not None:
            return fault
        if (delay := self.data_delay()) > 0:
            await asyncio.sleep(delay)
        data = bytes(envelope.original_content or b"")
        match = MESSAGE_ID.search(data)
        with self.lock:
            self.arrivals.append(
                Arrival(recipient, match.group(1).decode() if match else "", time.time(), data)
            )
        return "250 2.0.0 OK queued"


class _Refuse(asyncio.Protocol):
    def __init__(self, greeting: str) -> None:
        self._greeting = greeting

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(self._greeting.encode() + b"\r\n")
        transport.close()


@dataclass
class FaultServer:
    host: str
    port: int
    handler: FaultHandler


@contextmanager
def fault_server(handler: FaultHandler | None = None) -> Iterator[FaultServer]:
    """Run a FaultServer for the duration of the `with` block."""
    handler = handler or FaultHandler()
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict[str, Any] = {}

    def factory() -> asyncio.Protocol:
        handler.connections += 1
        if handler.connections <= handler.refuse_connections:
            return _Refuse(handler.greeting_fault)
        smtp: asyncio.Protocol = SMTP(handler, hostname="faults.localhost", decode_data=False)
        return smtp

    def run() -> None:
        asyncio.set_event_loop(loop)
        server = loop.run_until_complete(loop.create_server(factory, host="127.0.0.1", port=0))
        holder["port"] = server.sockets[0].getsockname()[1]
        started.set()
        loop.run_forever()
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(5), "the fault server did not start"
    try:
        yield FaultServer("127.0.0.1", holder["port"], handler)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


def build(subscriber: Subscriber) -> Outgoing:
    """A minimal message for `subscriber` with a fresh Message-ID (the servers record it)
    and a body line that starts with a dot (so dot-stuffing is exercised)."""
    mid = f"<{secrets.token_hex(8)}@kzmail.test>"
    data = (
        f"From: news@kzmail.test\r\nTo: {subscriber.email}\r\nMessage-ID: {mid}\r\n"
        f"Subject: test\r\n\r\nHallo {subscriber.name}\r\n.leading dot\r\n"
    ).encode()
    return Outgoing(subscriber.email, mid, data)

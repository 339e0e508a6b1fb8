"""Real SMTP servers on loopback for the tests: aiosmtpd in a thread of its own, recording
every message it accepts."""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass
class Received:
    """One message as the server got it: envelope sender, recipients, raw bytes."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes


def offer_pipelining(
    session: Session, hostname: str, responses: list[str], offer: bool
) -> list[str]:
    """aiosmtpd's EHLO replies, with PIPELINING among them if `offer` (aiosmtpd reads the
    commands in order, so it can take them pipelined; it just does not say so)."""
    session.host_name = hostname
    if offer:
        responses.insert(-1, "250-PIPELINING")
    return responses


@dataclass
class RecordingHandler:
    """Stores every message; `fault` may answer a verb with an error instead."""

    messages: list[Received] = field(default_factory=list)
    refuse_rcpt: dict[str, str] = field(default_factory=dict)
    pipelining: bool = True  # offer PIPELINING, as every common relay does

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
        if address in self.refuse_rcpt:
            return self.refuse_rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.messages.append(
            Received(
                str(envelope.mail_from),
                list(envelope.rcpt_tos),
                bytes(envelope.original_content or b""),
            )
        )
        return "250 OK queued"


@dataclass
class SmtpServer:
    """Where a running test server listens, and the handler that records its mail."""

    host: str
    port: int
    handler: RecordingHandler


@contextmanager
def smtp_in_thread(factory: Callable[[], SMTP], tls: ssl.SSLContext | None = None) -> Iterator[int]:
    """Serve aiosmtpd protocols from `factory` on a free loopback port, in a thread and loop
    of their own (so a test's blocking client code can talk to it); yield the port."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict[str, int] = {}

    def run() -> None:
        asyncio.set_event_loop(loop)
        server = loop.run_until_complete(
            loop.create_server(factory, host="127.0.0.1", port=0, ssl=tls)
        )
        holder["port"] = server.sockets[0].getsockname()[1]
        started.set()
        loop.run_forever()
        server.close()
        loop.run_until_complete(server.wait_closed())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(5), "the test SMTP server did not start"
    try:
        yield holder["port"]
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)

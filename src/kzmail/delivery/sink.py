"""The embedded sink: a real SMTP server on a free loopback port, inside this process.

`smtp.host: local` sends here instead of a relay. Every accepted message is stored as
one file in a Maildir (`outbox/<campaign>/new/`), exactly as received, with the
envelope recorded in `Return-Path`/`Delivered-To` lines the way a real mailbox would.
"""

from __future__ import annotations

import asyncio
import mailbox
from pathlib import Path
from types import TracebackType

from aiosmtpd.smtp import SMTP, Envelope, Session

from kzmail.errors import StateError


class MaildirHandler:
    """aiosmtpd handler that writes each message to a Maildir."""

    def __init__(self, folder: Path) -> None:
        try:
            folder.parent.mkdir(parents=True, exist_ok=True)
            self.maildir = mailbox.Maildir(folder, create=True)
        except OSError as exc:
            raise StateError(f"cannot create the outbox {folder}: {exc}") from exc
        self.count = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or b""
        for recipient in envelope.rcpt_tos:
            trace = f"Return-Path: <{envelope.mail_from}>\r\nDelivered-To: {recipient}\r\n"
            self.maildir.add(trace.encode("ascii", "replace") + data)
            self.count += 1
        return "250 OK stored"


class EmbeddedSink:
    """Async context manager: `async with EmbeddedSink(folder) as sink: sink.port`."""

    def __init__(self, folder: Path, host: str = "127.0.0.1") -> None:
        self.folder = folder
        self.host = host
        self.port = 0
        self.handler = MaildirHandler(folder)
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> EmbeddedSink:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(
                self.handler,
                hostname="kzmail-sink.localhost",
                decode_data=False,
                enable_SMTPUTF8=True,
                ident="kzmail embedded sink",
            ),
            host=self.host,
            port=0,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

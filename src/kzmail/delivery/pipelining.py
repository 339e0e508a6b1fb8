"""SMTP transactions with PIPELINING (RFC 2920) over a connection aiosmtplib has opened.

aiosmtplib does the greeting, EHLO, STARTTLS and AUTH; when the relay advertises PIPELINING,
`Pipeline.take_over` then becomes the connection's protocol and runs each transaction in
two round trips instead of four: MAIL, RCPT and DATA go out in one write and their three
replies are read in order, then the message and its final dot, then the reply to that.
(aiosmtplib reads one reply per command written and drops replies that arrive early, so it
cannot pipeline itself.) Every reply is checked, as RFC 2920 requires: a refused MAIL or
RCPT is reported at its own stage, a DATA the relay wrongly accepted after a refused RCPT
is ended with an empty body, and the transaction is reset before the next one.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

import aiosmtplib

from kzmail.errors import Lost, Refused, TransientDeliveryError
from kzmail.models import Reply

_MAX_REPLY = 64 * 1024


class Pipeline(asyncio.Protocol):
    """Reads the relay's replies into a queue; `transaction` runs one pipelined delivery."""

    def __init__(self, transport: asyncio.Transport, timeout: float) -> None:
        self._transport = transport
        self._timeout = timeout
        self._buffer = bytearray()
        self._replies: deque[Reply] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._lost: Exception | None = None
        self._lines: list[str] = []
        self._busy = False

    @classmethod
    def take_over(cls, smtp: aiosmtplib.SMTP, timeout: float) -> Pipeline:
        """Become the protocol of `smtp`'s connection; `smtp` must not be used after this."""
        transport = smtp.transport
        if not isinstance(transport, asyncio.Transport) or transport.is_closing():
            raise TransientDeliveryError("the relay closed the connection", stage="connect")
        pipeline = cls(transport, timeout)
        transport.set_protocol(pipeline)
        return pipeline

    # asyncio.Protocol ---------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        start = 0
        while (end := buffer.find(b"\n", start)) >= 0:
            line = bytes(buffer[start:end]).rstrip(b"\r")
            start = end + 1
            try:
                code = int(line[:3])
            except ValueError:
                self._fail(
                    TransientDeliveryError(
                        f"the relay sent a malformed reply: {line[:80]!r}", stage="reply"
                    )
                )
                return
            self._lines.append(line[4:].decode("utf-8", "replace").strip())
            if line[3:4] != b"-":  # the last line of a reply
                reply = Reply(code, "\n".join(self._lines))
                self._lines = []
                if self._busy:
                    self._replies.append(reply)
                elif code == 421:  # "closing": the idle connection ends
                    self._fail(aiosmtplib.SMTPServerDisconnected(str(reply)))
                    return
        del buffer[:start]
        if len(buffer) > _MAX_REPLY:
            self._fail(TransientDeliveryError("the relay's reply is too long", stage="reply"))
            return
        if self._replies:
            self._wake()

    def eof_received(self) -> bool:
        self._fail(aiosmtplib.SMTPServerDisconnected("the relay closed the connection"))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        lost = aiosmtplib.SMTPServerDisconnected("the connection was lost")
        lost.__cause__ = exc
        self._fail(lost)

    def _fail(self, exc: Exception) -> None:
        if self._lost is None:
            self._lost = exc
        if not self._transport.is_closing():
            self._transport.close()
        self._wake()

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # replies --------------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self._lost is None and not self._transport.is_closing()

    async def _reply(self, stage: str) -> Reply:
        """The next reply in order; `Lost` if the connection is gone or the relay stalls."""
        while not self._replies:
            if self._lost is not None:
                raise Lost(self._lost, stage)
            loop = asyncio.get_running_loop()
            waiter = self._waiter = loop.create_future()
            # a bare timer, not `asyncio.timeout`: cheaper, and a message may wait up to
            # four times (docs/decisions/0011-journal-sync-inline-or-threaded.md)
            timer = loop.call_later(self._timeout, self._stalled, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
        return self._replies.popleft()

    def _stalled(self, waiter: asyncio.Future[None]) -> None:
        if not waiter.done():
            self._fail(aiosmtplib.SMTPTimeoutError("the relay did not answer in time"))

    def _write(self, data: bytes, stage: str) -> None:
        if self._lost is not None:
            raise Lost(self._lost, stage)
        self._transport.write(data)

    # one delivery ---------------------------------------------------------------------
    async def transaction(
        self,
        sender: str,
        recipient: str,
        wire: bytes,
        ready: Callable[[], Awaitable[None]] | None = None,
    ) -> Reply:
        """Deliver `wire` (CRLF lines, dot-stuffed, ending in CRLF) to one recipient.

        Returns the relay's 250 to the message; raises `Refused` for an error reply (with
        the stage it belongs to), `Lost` (with the stage) if the connection fails.
        `ready` is awaited after the relay's 354, just before the message goes out; if it
        raises, the connection is dropped (the relay discards a transaction without its
        final dot) and the error goes to the caller.
        """
        self._busy = True
        try:
            return await self._transaction(sender, recipient, wire, ready)
        finally:
            self._busy = False

    async def _transaction(
        self, sender: str, recipient: str, wire: bytes, ready: Callable[[], Awaitable[None]] | None
    ) -> Reply:
        self._write(f"MAIL FROM:<{sender}>\r\nRCPT TO:<{recipient}>\r\nDATA\r\n".encode(), "mail")
        mail = await self._reply("mail")
        rcpt = await self._reply("rcpt")
        data = await self._reply("data")
        refused = (
            Refused(mail, "mail")
            if mail.code != 250
            else Refused(rcpt, "rcpt")
            if rcpt.code not in (250, 251)
            else None
        )
        if data.code == 354:
            if refused is not None:
                # RFC 2920 3.1: the relay took DATA with no valid recipient; send nothing
                self._write(b".\r\n", "data")
                await self._reply("data")
                await self._reset()
                raise refused
            if ready is not None:
                try:
                    await ready()
                except BaseException:
                    # the relay waits for a message: dropping the connection leaves it none
                    self._fail(aiosmtplib.SMTPServerDisconnected("the message was held back"))
                    raise
            self._write(wire + b".\r\n", "data")  # one copy is cheaper than one more send
            final = await self._reply("data")
            if final.code != 250:
                raise Refused(final, "data")
            return final
        await self._reset()
        raise refused or Refused(data, "data")

    async def _reset(self) -> None:
        """RSET after a refused transaction; a connection that cannot is closed."""
        try:
            self._write(b"RSET\r\n", "rset")
            await self._reply("rset")
        except Lost:
            self._fail(aiosmtplib.SMTPServerDisconnected("no reply to RSET"))

    async def quit(self) -> None:
        """Say goodbye and close; a relay that does not answer is simply cut off."""
        try:
            if self.is_open:
                self._busy = True
                self._write(b"QUIT\r\n", "quit")
                await self._reply("quit")
        except Exception:  # noqa: BLE001, S110 - closing anyway
            pass
        finally:
            if not self._transport.is_closing():
                self._transport.close()

"""PIPELINING (RFC 2920) against a real, scripted SMTP server on loopback.

The server is a raw asyncio protocol (so it can misbehave in ways aiosmtpd will not): it
records every chunk it reads outside DATA and every message it takes, and its replies can
be scripted per command.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

from kzmail.delivery.smtp import RelayConfig, SmtpTransport
from kzmail.errors import (
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
    UnknownRecipientError,
)
from tests.helpers.smtp import smtp_in_thread

FROM = "news@kzmail.test"
MESSAGE = b"Subject: hi\r\n\r\nHallo\r\n.dot line\r\n"


@dataclass
class Script:
    """What the relay says; `replies` maps a verb to the replies for its next uses."""

    pipelining: bool = True
    replies: dict[str, list[bytes]] = field(default_factory=dict)
    chunks: list[bytes] = field(default_factory=list)
    messages: list[bytes] = field(default_factory=list)
    connections: int = 0
    hang_up_after_message: bool = False  # "421 idle" once the message is taken, then close

    def reply(self, verb: str, default: bytes) -> bytes:
        queue = self.replies.get(verb)
        return queue.pop(0) if queue else default


class Relay(asyncio.Protocol):
    def __init__(self, script: Script) -> None:
        self.script = script
        self.buffer = bytearray()
        self.in_data = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.script.connections += 1
        transport.write(b"220 scripted ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        if not self.in_data:
            self.script.chunks.append(data)
        self.buffer += data
        while True:
            if self.in_data:
                # the CRLF that ended the DATA line counts: a lone ".\r\n" is an empty body
                end = self.buffer.find(b"\r\n.\r\n", 0)
                if self.buffer.startswith(b".\r\n"):
                    end = -2
                elif end < 0:
                    return
                self.script.messages.append(bytes(self.buffer[: end + 2]))
                del self.buffer[: end + 5]
                self.in_data = False
                self.transport.write(self.script.reply("END", b"250 2.0.0 queued\r\n"))
                if self.script.hang_up_after_message:
                    self.transport.write(b"421 4.4.2 idle too long\r\n")
                    self.transport.close()
                    return
                continue
            nl = self.buffer.find(b"\r\n")
            if nl < 0:
                return
            verb = bytes(self.buffer[:4]).upper().decode()
            del self.buffer[: nl + 2]
            if verb == "EHLO":
                offer = b"250-PIPELINING\r\n" if self.script.pipelining else b""
                self.transport.write(b"250-scripted\r\n" + offer + b"250 8BITMIME\r\n")
            elif verb == "DATA":
                answer = self.script.reply("DATA", b"354 go ahead\r\n")
                self.in_data = answer.startswith(b"354")
                self.transport.write(answer)
            elif verb == "QUIT":
                self.transport.write(b"221 bye\r\n")
                self.transport.close()
                return
            else:
                self.transport.write(self.script.reply(verb, b"250 ok\r\n"))


@contextmanager
def relay(script: Script) -> Iterator[SmtpTransport]:
    with smtp_in_thread(lambda: Relay(script)) as port:  # type: ignore[arg-type, return-value]
        yield SmtpTransport(RelayConfig(host="127.0.0.1", port=port, tls="none", timeout=1.0))


async def send(transport: SmtpTransport, *recipients: str) -> list[str]:
    try:
        return [await transport.send(FROM, r, MESSAGE) for r in recipients]
    finally:
        await transport.close()


async def refused_then_next(transport: SmtpTransport, address: str) -> tuple[DeliveryError, str]:
    """Send to `address`, which the relay refuses, then to one more over the same link."""
    with pytest.raises(DeliveryError) as refused:
        await transport.send(FROM, address, MESSAGE)
    return refused.value, (await send(transport, "b@x.test"))[0]


def test_mail_rcpt_and_data_go_out_in_one_write_when_offered() -> None:
    script = Script()
    with relay(script) as transport:
        replies = asyncio.run(send(transport, "a@x.test", "b@x.test"))
    assert replies == ["250 2.0.0 queued"] * 2
    envelopes = [c for c in script.chunks if c.startswith(b"MAIL")]
    assert envelopes == [
        b"MAIL FROM:<news@kzmail.test>\r\nRCPT TO:<a@x.test>\r\nDATA\r\n",
        b"MAIL FROM:<news@kzmail.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n",
    ]
    # the message arrives dot-stuffed, and both over the one connection
    assert script.messages == [b"Subject: hi\r\n\r\nHallo\r\n..dot line\r\n"] * 2
    assert script.connections == 1


def test_without_the_offer_each_command_waits_for_its_reply() -> None:
    script = Script(pipelining=False)
    with relay(script) as transport:
        asyncio.run(send(transport, "a@x.test"))
    assert not any(c.startswith(b"MAIL") and b"RCPT" in c for c in script.chunks)
    assert len(script.messages) == 1


def test_a_refused_rcpt_is_reported_as_such_and_the_connection_stays_usable() -> None:
    script = Script(
        replies={
            "RCPT": [b"550 5.1.1 no such user\r\n"],
            "DATA": [b"554 5.5.1 no valid recipients\r\n"],
        }
    )
    with relay(script) as transport:
        refused, next_reply = asyncio.run(refused_then_next(transport, "gone@x.test"))
    assert isinstance(refused, UnknownRecipientError)
    assert refused.stage == "rcpt"
    assert "no such user" in str(refused)
    assert next_reply.startswith("250")
    assert b"RSET\r\n" in script.chunks
    assert script.connections == 1 and len(script.messages) == 1


def test_a_relay_that_accepts_data_after_refusing_rcpt_gets_an_empty_body() -> None:
    # RFC 2920 3.1: the client must not send the message; it ends DATA with a lone dot
    script = Script(
        replies={"RCPT": [b"452 4.2.2 mailbox full\r\n"], "END": [b"554 5.5.1 no recipients\r\n"]}
    )
    with relay(script) as transport:
        refused, next_reply = asyncio.run(refused_then_next(transport, "full@x.test"))
    assert isinstance(refused, TransientDeliveryError)
    assert refused.stage == "rcpt" and refused.code == 452
    assert next_reply.startswith("250")
    assert script.messages[0] == b""
    assert script.messages[1].startswith(b"Subject: hi")


def test_a_refused_mail_from_is_the_relay_refusing_us() -> None:
    script = Script(
        replies={
            "MAIL": [b"553 5.7.1 sender not allowed\r\n"],
            "RCPT": [b"503 5.5.1 need MAIL first\r\n"],
            "DATA": [b"503 5.5.1 need RCPT first\r\n"],
        }
    )
    with relay(script) as transport, pytest.raises(PermanentDeliveryError) as refused:
        asyncio.run(send(transport, "a@x.test"))
    assert refused.value.stage == "mail"
    assert script.messages == []


def test_a_multiline_reply_and_an_idle_close_are_understood() -> None:
    # the relay ends each connection with a 421 of its own accord after the message
    script = Script(
        replies={"END": [b"250-first line\r\n250 2.0.0 second line\r\n"]},
        hang_up_after_message=True,
    )
    with relay(script) as transport:

        async def run() -> list[str]:
            first = await transport.send(FROM, "a@x.test", MESSAGE)
            await asyncio.sleep(0.1)
            return [first, *await send(transport, "b@x.test")]

        replies = asyncio.run(run())
    assert replies == ["250 first line\n2.0.0 second line", "250 2.0.0 queued"]
    assert script.connections == 2 and len(script.messages) == 2


def test_a_stalled_reply_times_out_as_a_transient_failure() -> None:
    script = Script(replies={"END": [b""]})  # never answers the message
    with relay(script) as transport, pytest.raises(TransientDeliveryError) as stalled:
        asyncio.run(send(transport, "a@x.test"))
    assert stalled.value.stage == "data"


@pytest.mark.parametrize("pipelining", [True, False])
def test_ready_is_awaited_once_the_relay_took_the_recipient_and_before_the_message(
    pipelining: bool,
) -> None:
    """The sender commits its `sending` mark in `ready`: by then the relay has the
    envelope (the round trip overlaps the commit), but no message it could deliver."""
    script = Script(pipelining=pipelining)
    seen: list[tuple[bool, int]] = []

    async def ready() -> None:
        envelope = b"".join(script.chunks)
        seen.append((b"RCPT TO:<a@x.test>" in envelope, len(script.messages)))

    async def run() -> str:
        try:
            return await transport.send(FROM, "a@x.test", MESSAGE, ready=ready)
        finally:
            await transport.close()

    with relay(script) as transport:
        reply = asyncio.run(run())
    assert seen == [(True, 0)]
    assert reply == "250 2.0.0 queued"
    assert len(script.messages) == 1


@pytest.mark.parametrize("pipelining", [True, False])
def test_a_failing_ready_sends_no_message_and_the_next_one_goes_out_afresh(
    pipelining: bool,
) -> None:
    """If the commit fails (disk full, say), the message must not go out: the connection
    is dropped mid-transaction, the error reaches the caller as it is."""
    script = Script(pipelining=pipelining)

    async def broken() -> None:
        raise OSError("disk full")

    async def run() -> str:
        with pytest.raises(OSError, match="disk full"):
            await transport.send(FROM, "a@x.test", MESSAGE, ready=broken)
        return (await send(transport, "b@x.test"))[0]

    with relay(script) as transport:
        reply = asyncio.run(run())
    assert reply == "250 2.0.0 queued"
    assert script.messages == [b"Subject: hi\r\n\r\nHallo\r\n..dot line\r\n"]  # b's only
    assert script.connections == 2

"""SMTP connections to the relay (aiosmtplib), and the one place SMTP errors are mapped.

A `SmtpTransport` is one long-lived connection, reused for many messages (up to a cap,
then a fresh one) and reopened when the relay drops it. aiosmtplib's errors become ours
where they cross this boundary: 4xx, timeouts and disconnects -> `TransientDeliveryError`;
5xx -> `PermanentDeliveryError` (`UnknownRecipientError` when the mailbox does not
exist). Each error says at which stage it happened (connect, mail, rcpt, data), so the
sender knows whether the recipient or the relay is to blame. A relay we cannot talk to at
all (connection refused, unknown host, TLS or its certificate failing) is an
`UnreachableRelayError` (see `delivery.unreachable`): no use trying it again at once.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiosmtplib

from kzmail.delivery.pipelining import Pipeline
from kzmail.delivery.unreachable import unreachable
from kzmail.errors import (
    DeliveryError,
    Lost,
    PermanentDeliveryError,
    Refused,
    TransientDeliveryError,
    UnknownRecipientError,
)

# "no such user" in its common spellings (RFC 3463 5.1.1, 5.1.0, 5.1.6 and plain words)
_UNKNOWN_USER = re.compile(
    r"\b5\.1\.[016]\b|no such (user|mailbox|recipient)|user unknown|unknown (user|recipient)"
    r"|mailbox (does not exist|not found|unavailable)|does not exist|recipient not found",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class RelayConfig:
    """Where and how to connect; the password comes from the environment, never a file."""

    host: str
    port: int
    tls: str = "starttls"  # none | starttls | ssl
    username: str = ""
    password: str = ""
    timeout: float = 30.0
    local_hostname: str = "localhost"
    verify_certificate: bool = True
    ca_file: Path | None = None
    messages_per_connection: int = 100
    setting: str = "smtp"  # where the campaign file sets it (`smtp`, `relays[1]`), for hints

    def describe(self) -> str:
        return f"{self.host}:{self.port}"


def _by_code(code: int, text: str, stage: str) -> DeliveryError:
    message = f"{code} {text}".strip()
    if 400 <= code < 500:
        return TransientDeliveryError(message, code=code, stage=stage)
    if code in (550, 551, 553) and stage == "rcpt" and _UNKNOWN_USER.search(text):
        return UnknownRecipientError(message, code=code, stage=stage)
    return PermanentDeliveryError(message, code=code, stage=stage)


def map_error(exc: Exception, stage: str = "") -> DeliveryError:
    """Translate an aiosmtplib / socket error into kzmail's delivery errors."""
    if isinstance(exc, DeliveryError):
        return exc
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        first = exc.recipients[0]
        return _by_code(first.code, first.message, "rcpt")
    if isinstance(exc, aiosmtplib.SMTPResponseException) and exc.code >= 400:
        return _by_code(exc.code, exc.message, stage)
    certificate = exc if isinstance(exc, ssl.SSLError) else exc.__cause__
    if isinstance(certificate, ssl.SSLError):
        # a certificate that does not verify will not verify on the next try either
        return PermanentDeliveryError(f"TLS failed: {certificate}", stage=stage)
    if isinstance(exc, aiosmtplib.SMTPTimeoutError):
        return TransientDeliveryError(f"timed out ({exc})", stage=stage)
    if isinstance(exc, (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPConnectError)):
        return TransientDeliveryError(str(exc) or type(exc).__name__, stage=stage)
    if isinstance(exc, (OSError, TimeoutError)):
        return TransientDeliveryError(f"connection problem: {exc}", stage=stage)
    return PermanentDeliveryError(f"{type(exc).__name__}: {exc}", stage=stage)


def client(config: RelayConfig) -> aiosmtplib.SMTP:
    """An unconnected aiosmtplib client for the relay: `connect()` does the greeting, EHLO,
    STARTTLS or implicit TLS and AUTH, as configured."""
    c = config
    return aiosmtplib.SMTP(
        hostname=c.host,
        port=c.port,
        timeout=c.timeout,
        local_hostname=c.local_hostname,
        use_tls=c.tls == "ssl",
        start_tls=c.tls == "starttls",
        validate_certs=c.verify_certificate,
        cert_bundle=str(c.ca_file) if c.ca_file else None,
        username=c.username or None,
        password=c.password or None,
    )


async def connect(config: RelayConfig) -> aiosmtplib.SMTP:
    """A connection through greeting, EHLO, TLS and AUTH; errors mapped (`DeliveryError`)."""
    smtp = client(config)
    try:
        await smtp.connect()
        if smtp.is_ehlo_or_helo_needed:  # without TLS or AUTH nothing has asked yet
            try:
                await smtp.ehlo()
            except aiosmtplib.SMTPHeloError:
                await smtp.helo()
    except aiosmtplib.SMTPAuthenticationError as exc:
        smtp.close()
        refused = TransientDeliveryError if 400 <= exc.code < 500 else PermanentDeliveryError
        reply = f"{exc.code} {exc.message}".strip()
        raise refused(
            f"AUTH as {config.username} refused: {reply}", code=exc.code, stage="connect"
        ) from exc
    except Exception as exc:
        no_auth = bool(config.username and smtp.esmtp_extensions) and not smtp.supports_extension(
            "auth"
        )
        smtp.close()
        if no_auth:
            raise PermanentDeliveryError(
                f"{config.describe()} does not offer AUTH, but {config.setting}.username is set"
                + (" (many relays offer it only after STARTTLS)" if config.tls == "none" else ""),
                stage="connect",
            ) from exc
        raise (unreachable(exc, config) or map_error(exc, "connect")) from exc
    return smtp


def wire_ready(data: bytes) -> bytes | None:
    """The message as DATA sends it (CRLF lines, dot-stuffed), or None if not plain CRLF.

    aiosmtplib normalises line ends and stuffs dots with two regular expressions over
    every message; for bytes that are already CRLF text, a few C-speed counts and at most
    one replace do the same (see docs/decisions/0004-wire-ready-bytes.md).
    """
    if data.count(b"\r") != data.count(b"\n") or data.count(b"\r\n") != data.count(b"\n"):
        return None
    if b"\r\n." in data:
        data = data.replace(b"\r\n.", b"\r\n..")
    if data.startswith(b"."):
        data = b"." + data
    return data if data.endswith(b"\r\n") else data + b"\r\n"


_LINE_END = re.compile(rb"\r\n|\r|\n")


def to_wire(data: bytes, wire_safe: bool = False) -> bytes:
    """`data` as DATA sends it, whatever its line ends (the slow path only when needed)."""
    if wire_safe and data.endswith(b"\r\n"):
        return data
    ready = wire_ready(data)
    if ready is None:
        ready = wire_ready(_LINE_END.sub(b"\r\n", data))
        assert ready is not None
    return ready


async def _data(smtp: aiosmtplib.SMTP, data: bytes, wire_safe: bool) -> aiosmtplib.SMTPResponse:
    """DATA with the bytes in wire form (`to_wire`), sent as they are: aiosmtplib's `data()`
    would run its two regular expressions over every message again.

    Public API only: `execute_command` sends DATA (and closes the connection if it drops or
    stalls); the message goes out with the protocol's `write` and its reply is read with
    `read_response`, which marks a reply as expected before anything more is read (nothing
    awaits between the two). The connection is ours alone, one transaction at a time, so
    aiosmtplib's command lock has nothing to guard here.
    """
    start = await smtp.execute_command(b"DATA")
    if start.code != 354:
        raise aiosmtplib.SMTPDataError(start.code, start.message)
    protocol = smtp.protocol
    if protocol is None:
        raise aiosmtplib.SMTPServerDisconnected("Connection lost")
    try:
        protocol.write(to_wire(data, wire_safe))
        protocol.write(b".\r\n")
        response = await protocol.read_response(timeout=smtp.timeout)
    except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError):
        smtp.close()
        raise
    if response.code != 250:
        raise aiosmtplib.SMTPDataError(response.code, response.message)
    return response


class SmtpTransport:
    """One reusable SMTP connection; `send` delivers one message to one recipient."""

    def __init__(self, config: RelayConfig) -> None:
        self._config = config
        self._smtp: aiosmtplib.SMTP | None = None
        self._pipe: Pipeline | None = None
        self._used = 0

    @property
    def relay(self) -> str:
        return self._config.describe()

    @property
    def _connected(self) -> bool:
        if self._pipe is not None:
            return self._pipe.is_open
        return self._smtp is not None and self._smtp.is_connected

    async def open(self) -> None:
        """Connect now, so a wrong host or password shows before the first message."""
        if self._connected:
            return
        self._smtp = self._pipe = None
        smtp = await connect(self._config)
        if smtp.supports_extension("pipelining"):  # RFC 2920: fewer round trips
            self._pipe = Pipeline.take_over(smtp, self._config.timeout)
        else:
            self._smtp = smtp
        self._used = 0

    async def send(
        self,
        sender: str,
        recipient: str,
        data: bytes,
        *,
        wire_safe: bool = False,
        ready: Callable[[], Awaitable[None]] | None = None,
    ) -> str:
        """Deliver `data` to exactly one recipient; return the relay's reply to DATA.

        `wire_safe` says the bytes are CRLF lines with none starting with a dot (the
        message factory knows), so they need no checking before DATA. `ready`, if given,
        is awaited once the relay has accepted the sender and the recipient, just before
        the message itself goes out (the sender commits its `sending` mark there, while
        the commands' round trip overlaps with the commit); if it raises, the connection
        is dropped without a message and its error is raised as it is.
        """
        if self._used >= self._config.messages_per_connection:
            await self.close()
        reused = self._connected
        await self.open()
        if self._pipe is not None:
            return await self._pipelined(sender, recipient, to_wire(data, wire_safe), reused, ready)
        try:
            await self._mail(sender, reused)
        except DeliveryError:
            await self.close()
            raise
        assert self._smtp is not None
        self._used += 1
        try:
            await self._smtp.rcpt(recipient)
        except aiosmtplib.SMTPResponseException as exc:
            await self._reset()
            raise map_error(exc, "rcpt") from exc
        except Exception as exc:
            await self.close()
            raise map_error(exc, "rcpt") from exc
        if ready is not None:
            try:
                await ready()
            except BaseException:
                self._smtp.close()  # no DATA yet: the relay drops the transaction
                self._smtp = None
                raise
        try:
            reply = await _data(self._smtp, data, wire_safe)
        except Exception as exc:
            # the state of the connection is unknown: the next message gets a fresh one
            await self.close()
            raise map_error(exc, "data") from exc
        return f"{reply.code} {reply.message}"

    async def _pipelined(
        self,
        sender: str,
        recipient: str,
        wire: bytes,
        reused: bool,
        ready: Callable[[], Awaitable[None]] | None,
    ) -> str:
        while True:
            assert self._pipe is not None
            self._used += 1
            try:
                return str(await self._pipe.transaction(sender, recipient, wire, ready))
            except Refused as refused:
                raise _by_code(refused.reply.code, refused.reply.text, refused.stage) from refused
            except Lost as lost:
                await self.close()
                if not (reused and lost.stage == "mail"):
                    raise map_error(lost.cause, lost.stage) from lost
            # a reused connection the relay had closed while idle: once more on a fresh one
            reused = False
            await self.open()
            if self._pipe is None:
                raise TransientDeliveryError(
                    "the relay stopped offering PIPELINING", stage="connect"
                )

    async def _mail(self, sender: str, reused: bool) -> None:
        assert self._smtp is not None
        try:
            await self._smtp.mail(sender)
        except aiosmtplib.SMTPServerDisconnected:
            if not reused:
                raise TransientDeliveryError(
                    "the relay closed the connection", stage="mail"
                ) from None
        except Exception as exc:
            raise map_error(exc, "mail") from exc
        else:
            return
        # a reused connection the relay had closed while idle: once more on a fresh one
        await self.close()
        await self.open()
        try:
            await self._smtp.mail(sender)
        except Exception as exc:
            raise map_error(exc, "mail") from exc

    async def _reset(self) -> None:
        assert self._smtp is not None
        try:
            await self._smtp.rset()
        except Exception:  # noqa: BLE001 - a connection that cannot RSET is replaced
            await self.close()

    async def close(self) -> None:
        pipe, self._pipe = self._pipe, None
        if pipe is not None:
            await pipe.quit()
        smtp, self._smtp = self._smtp, None
        if smtp is not None and smtp.is_connected:
            try:
                await smtp.quit(timeout=min(self._config.timeout, 5.0))
            except Exception:  # noqa: BLE001 - closing a broken connection may fail; fine
                smtp.close()

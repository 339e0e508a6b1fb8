"""SMTP connections to the relay (aiosmtplib), and the one place SMTP errors are mapped.

A `SmtpTransport` is one long-lived connection, reused for many messages and reopened
when the relay drops it. aiosmtplib's errors become ours where they cross this boundary:
4xx, timeouts and disconnects -> `TransientDeliveryError`; 5xx -> `PermanentDeliveryError`.
"""

from __future__ import annotations

from dataclasses import dataclass

import aiosmtplib

from .errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError


@dataclass(frozen=True)
class RelayConfig:
    """Where and how to connect; the password comes from the environment, never a file."""

    host: str
    port: int
    tls: str = "starttls"          # none | starttls | ssl
    username: str = ""
    password: str = ""
    timeout: float = 30.0
    local_hostname: str = "localhost"

    def describe(self) -> str:
        return f"{self.host}:{self.port}"


def _by_code(code: int, text: str) -> DeliveryError:
    if 400 <= code < 500:
        return TransientDeliveryError(f"{code} {text}".strip(), code=code)
    return PermanentDeliveryError(f"{code} {text}".strip(), code=code)


def map_error(exc: Exception) -> DeliveryError:
    """Translate an aiosmtplib / socket error into kzmail's delivery errors."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        first = exc.recipients[0]
        return _by_code(first.code, first.message)
    if isinstance(exc, (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError,
                        aiosmtplib.SMTPConnectError)):
        return TransientDeliveryError(str(exc) or type(exc).__name__)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return _by_code(exc.code, exc.message)
    if isinstance(exc, (OSError, TimeoutError)):
        return TransientDeliveryError(f"connection problem: {exc}")
    return PermanentDeliveryError(f"{type(exc).__name__}: {exc}")


class SmtpTransport:
    """One reusable SMTP connection; `send` delivers one message to one recipient."""

    def __init__(self, config: RelayConfig) -> None:
        self._config = config
        self._smtp: aiosmtplib.SMTP | None = None

    async def _connect(self) -> aiosmtplib.SMTP:
        c = self._config
        smtp = aiosmtplib.SMTP(
            hostname=c.host, port=c.port, timeout=c.timeout, local_hostname=c.local_hostname,
            use_tls=c.tls == "ssl", start_tls=c.tls == "starttls",
            username=c.username or None, password=c.password or None)
        await smtp.connect()
        return smtp

    async def open(self) -> None:
        """Connect now, so a wrong host or password fails before the first message."""
        try:
            if self._smtp is None or not self._smtp.is_connected:
                self._smtp = await self._connect()
        except Exception as exc:  # noqa: BLE001 - every failure is mapped, none escapes raw
            self._smtp = None
            raise map_error(exc) from None

    async def send(self, sender: str, recipient: str, data: bytes) -> str:
        """Deliver `data` to exactly one recipient; return the relay's reply to DATA."""
        await self.open()
        assert self._smtp is not None
        try:
            _, reply = await self._smtp.sendmail(sender, [recipient], data)
        except Exception as exc:  # noqa: BLE001
            if not isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
                await self.close()   # state unknown: the next message gets a fresh connection
            raise map_error(exc) from None
        return reply

    async def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None and smtp.is_connected:
            try:
                await smtp.quit()
            except Exception:  # noqa: BLE001 - closing a broken connection may fail; fine
                smtp.close()

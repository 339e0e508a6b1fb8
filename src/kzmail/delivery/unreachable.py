"""A relay we cannot talk to at all, told apart from one that is only busy.

Connection refused, an unknown host, no route, TLS failing or a certificate kzmail cannot
verify: none of these gets better on the next attempt a few seconds later, so the send
pauses at once (`UnreachableRelayError`) with one line that says what to check, naming the
campaign file's key (`smtp.ca_file`, `relays.1.host`). Timeouts, 4xx greetings and drops
are not these: they are retried.
"""

from __future__ import annotations

import errno
import socket
import ssl
from typing import TYPE_CHECKING

from kzmail.errors import UnreachableRelayError

if TYPE_CHECKING:
    from kzmail.delivery.smtp import RelayConfig

_NO_ROUTE = (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.EHOSTDOWN)


def unreachable(exc: BaseException, config: RelayConfig) -> UnreachableRelayError | None:
    """The one line for a relay we cannot talk to at all, or None if `exc` is not that
    (a timeout, a 4xx greeting and a drop may pass: those are retried)."""
    relay, where = config.describe(), config.setting
    for cause in (exc, exc.__cause__):
        if isinstance(cause, ssl.SSLCertVerificationError):
            why = cause.verify_message or cause.reason or str(cause)
            if config.ca_file is not None:
                hint = f"is {where}.ca_file {config.ca_file} the CA that signed it?"
            else:
                hint = (
                    f"if the relay has a certificate of its own, set {where}.ca_file to the "
                    "CA certificate (PEM) that signed it"
                )
            return UnreachableRelayError(
                f"kzmail cannot verify the TLS certificate of {relay} "
                f"(certificate verify failed: {why}); {hint}",
                stage="connect",
            )
        if isinstance(cause, ssl.SSLError):
            return UnreachableRelayError(
                f"TLS with {relay} failed ({cause.reason or cause}): does {where}.tls "
                f"({config.tls}) match the port? (starttls is usual on 587, ssl on 465)",
                stage="connect",
            )
        if isinstance(cause, socket.gaierror):
            return UnreachableRelayError(
                f"cannot connect to {relay}: unknown host {config.host!r} "
                f"({cause.strerror}); check {where}.host",
                stage="connect",
            )
        if isinstance(cause, ConnectionRefusedError):
            return UnreachableRelayError(
                f"cannot connect to {relay}: connection refused (is the relay running, and "
                f"are {where}.host and {where}.port right?)",
                stage="connect",
            )
        if isinstance(cause, OSError) and cause.errno in _NO_ROUTE:
            return UnreachableRelayError(
                f"cannot connect to {relay}: {cause.strerror}", stage="connect"
            )
    return None

"""Relays with TLS and AUTH for the tests: a self-signed certificate made by openssl, and a
real aiosmtpd that offers STARTTLS (or speaks implicit TLS) and checks a password."""

from __future__ import annotations

import socket
import ssl
import subprocess
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from tests.helpers.smtp import RecordingHandler, SmtpServer, smtp_in_thread


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for localhost and 127.0.0.1, and its key, made by openssl in `folder`."""
    cert, key = folder / "relay.pem", folder / "relay.key"
    done = subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, f"openssl could not make a test certificate: {done.stderr}"
    return cert, key


@contextmanager
def auth_relay(
    cert: Path,
    key: Path,
    *,
    password: str,
    implicit: bool = False,
    logins: list[tuple[str, str]] | None = None,
) -> Iterator[SmtpServer]:
    """A relay that wants TLS (STARTTLS, or implicit TLS) and then AUTH with `password`;
    each login tried is appended to `logins`."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    handler = RecordingHandler()

    def authenticator(
        server: SMTP, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        if logins is not None:
            logins.append((data.login.decode(), data.password.decode()))
        return AuthResult(success=data.password == password.encode(), handled=False)

    def factory() -> SMTP:
        with warnings.catch_warnings():  # implicit TLS: aiosmtpd cannot see the TLS is there
            warnings.simplefilter("ignore", UserWarning)
            return SMTP(
                handler,
                hostname="localhost",
                tls_context=None if implicit else context,
                require_starttls=not implicit,
                authenticator=authenticator,
                auth_required=True,
                auth_require_tls=not implicit,  # aiosmtpd knows of STARTTLS only
            )

    with smtp_in_thread(factory, tls=context if implicit else None) as port:
        yield SmtpServer("127.0.0.1", port, handler)


def refused_port() -> int:
    """A loopback port nobody listens on (it was free a moment ago): connecting is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])

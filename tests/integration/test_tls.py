"""TLS to the relay: STARTTLS and implicit TLS, with certificate verification on by default."""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP

from kzmail.cli.common import current_workspace
from kzmail.services import send
from tests.helpers.campaigns import edit_campaign
from tests.helpers.smtp import RecordingHandler, smtp_in_thread
from tests.helpers.tls import self_signed

CAMPAIGN = "campaigns/kasachstan.yaml"


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    return self_signed(tmp_path)


@contextmanager
def tls_server(
    cert: Path, key: Path, implicit: bool, pipelining: bool
) -> Iterator[tuple[int, RecordingHandler]]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    handler = RecordingHandler(pipelining=pipelining)

    def factory() -> SMTP:
        if implicit:
            return SMTP(handler, hostname="localhost")
        return SMTP(handler, hostname="localhost", tls_context=context, require_starttls=True)

    with smtp_in_thread(factory, tls=context if implicit else None) as port:
        yield port, handler


@pytest.mark.parametrize("pipelining", [False, True], ids=["one-by-one", "pipelined"])
@pytest.mark.parametrize("mode", ["starttls", "ssl"])
def test_tls_verifies_the_certificate_and_delivers_with_the_right_ca(
    project: Path, certificate: tuple[Path, Path], mode: str, pipelining: bool
) -> None:
    cert, key = certificate
    with tls_server(cert, key, implicit=mode == "ssl", pipelining=pipelining) as (port, handler):
        edit_campaign(
            project / CAMPAIGN,
            lambda t: (
                t.replace("host: local", "host: localhost")
                .replace("port: 587", f"port: {port}")
                .replace("tls: starttls", f"tls: {mode}")
            ),
        )
        # an unknown certificate is refused at once, nothing is sent
        refused = send.send(current_workspace(), project / CAMPAIGN)
        assert refused.report.paused is not None
        assert "certificate verify failed" in refused.report.paused
        assert handler.messages == []
        edit_campaign(
            project / CAMPAIGN,
            lambda t: t.replace("  username:", f"  ca_file: {cert}\n  username:"),
        )
        result = send.send(current_workspace(), project / CAMPAIGN)
        assert result.report.sent == 12
        assert len(handler.messages) == 12


def test_auth_uses_the_password_from_the_environment_and_a_refusal_pauses(
    project: Path, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from aiosmtpd.smtp import AuthResult, LoginPassword

    cert, key = certificate
    logins: list[tuple[str, str]] = []

    def authenticator(
        server: SMTP, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        logins.append((data.login.decode(), data.password.decode()))
        return AuthResult(success=data.password == b"s3cret", handled=False)

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    handler = RecordingHandler()
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(
        loop.create_server(
            lambda: SMTP(
                handler,
                hostname="localhost",
                tls_context=context,
                require_starttls=True,
                authenticator=authenticator,
                auth_required=True,
            ),
            "127.0.0.1",
            0,
        )
    )
    port = server.sockets[0].getsockname()[1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        edit_campaign(
            project / CAMPAIGN,
            lambda t: (
                t.replace("host: local", "host: localhost")
                .replace("port: 587", f"port: {port}")
                .replace('username: ""', f'username: "news"\n  ca_file: {cert}')
            ),
        )
        monkeypatch.setenv("KZMAIL_SMTP_PASSWORD", "wrong")
        refused = send.send(current_workspace(), project / CAMPAIGN)
        assert refused.report.paused is not None
        assert "535" in refused.report.paused
        assert handler.messages == []
        monkeypatch.setenv("KZMAIL_SMTP_PASSWORD", "s3cret")
        result = send.send(current_workspace(), project / CAMPAIGN)
        assert result.report.sent == 12
        assert len(handler.messages) == 12
        assert ("news", "wrong") in logins
        assert ("news", "s3cret") in logins
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)

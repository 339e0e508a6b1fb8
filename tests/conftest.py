"""Shared fixtures: a project copy in tmp_path and real SMTP servers on loopback."""

from __future__ import annotations

import asyncio
import shutil
import socket
import sqlite3
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True, scope="session")
def _fast_fqdn() -> Iterator[None]:
    """aiosmtpd asks socket.getfqdn(), which is slow on machines without DNS."""
    original = socket.getfqdn
    socket.getfqdn = lambda name="": "localhost"
    yield
    socket.getfqdn = original


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the example campaign, template and list; cwd and state folder inside it."""
    for name in ("campaigns", "templates"):
        shutil.copytree(REPO / name, tmp_path / name)
    shutil.copy(REPO / "subscribers.example.csv", tmp_path / "subscribers.example.csv")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KZMAIL_STATE_DIR", str(tmp_path / ".kzmail"))
    return tmp_path


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes


def offer_pipelining(session: Session, hostname: str, responses: list[str],
                     offer: bool) -> list[str]:
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
    pipelining: bool = True        # offer PIPELINING, as every common relay does

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope,
                          hostname: str, responses: list[str]) -> list[str]:
        return offer_pipelining(session, hostname, responses, self.pipelining)

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if address in self.refuse_rcpt:
            return self.refuse_rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.messages.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos),
                                      bytes(envelope.original_content or b"")))
        return "250 OK queued"


@dataclass
class SmtpServer:
    host: str
    port: int
    handler: RecordingHandler


@contextmanager
def smtp_in_thread(factory: Callable[[], SMTP],
                   tls: ssl.SSLContext | None = None) -> Iterator[int]:
    """Serve aiosmtpd protocols from `factory` on a free loopback port, in a thread and loop
    of their own (so a test's blocking client code can talk to it); yield the port."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict[str, int] = {}

    def run() -> None:
        asyncio.set_event_loop(loop)
        server = loop.run_until_complete(loop.create_server(factory, host="127.0.0.1", port=0,
                                                            ssl=tls))
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


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real aiosmtpd server on a free loopback port that records every message."""
    handler = RecordingHandler()
    factory = lambda: SMTP(handler, hostname="test.localhost", decode_data=False)  # noqa: E731
    with smtp_in_thread(factory) as port:
        yield SmtpServer("127.0.0.1", port, handler)


def edit_campaign(path: Path, change: Callable[[str], str]) -> None:
    path.write_text(change(path.read_text(encoding="utf-8")), encoding="utf-8")


def use_relay(campaign: Path, server: SmtpServer) -> None:
    """Point the campaign at a real SMTP server instead of the embedded sink."""
    edit_campaign(campaign, lambda text: text.replace(
        "host: local", f"host: {server.host}").replace(
        "port: 587", f"port: {server.port}").replace("tls: starttls", "tls: none"))


def use_long_list(campaign: Path, rows: int) -> None:
    """Give the campaign a list of `rows` subscribers (leser0@example.org, ...) and one
    connection, so that the sender reads the list (4 rows ahead) while it sends."""
    lines = "".join(f"leser{i}@example.org,Leser {i}\n" for i in range(rows))
    (campaign.parent.parent / "long.csv").write_text("email,name\n" + lines, encoding="utf-8")
    edit_campaign(campaign, lambda text: text.replace(
        "subscribers: ../subscribers.example.csv", "subscribers: ../long.csv").replace(
        "connections: 4", "connections: 1"))


def status_on_disk(state_db: Path, address: str) -> str | None:
    """A delivery's status as a crash at this moment would leave it, read by a connection
    of our own: the latest mark in the log (a later Journal folds it in), else the row."""
    db = sqlite3.connect(state_db)
    try:
        row = db.execute("SELECT status FROM marks WHERE address=? ORDER BY rowid DESC "
                         "LIMIT 1", (address,)).fetchone()
        row = row or db.execute("SELECT status FROM deliveries WHERE address=?",
                                (address,)).fetchone()
    finally:
        db.close()
    return None if row is None else str(row[0])

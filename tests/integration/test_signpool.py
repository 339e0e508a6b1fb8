"""DKIM signatures made in a signing process (`SignPool`): the same bytes as in-process,
verified by dkimpy after a real SMTP send; a worker killed mid-send stops the send with one
clear error and nothing recorded as sent that was not; no process is ever left behind."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import dkim as dkimpy
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from typer.testing import CliRunner

from kzmail.cli.common import current_workspace
from kzmail.cli.main import cli
from kzmail.dkim import pool as signpool
from kzmail.dkim.pool import SignPool
from kzmail.dkim.signer import DkimSigner, public_record
from kzmail.dkim.worker import Key, sign_digest
from kzmail.errors import SigningError
from kzmail.models import DkimSettings
from kzmail.render.message import Outgoing
from kzmail.services import send as service_send
from kzmail.services import workspace as app
from kzmail.state.journal import Journal
from tests.helpers.campaigns import edit_campaign, use_long_list, use_relay
from tests.helpers.smtp import SmtpServer, smtp_in_thread

DOMAIN = "arbeiterinnenmacht.example.org"
Sealer = Callable[[Outgoing], Awaitable[Outgoing]]
CAMPAIGN = Path("campaigns/kasachstan.yaml")
MESSAGE = (
    b"From: Gruppe <newsletter@arbeiterinnenmacht.example.org>\r\nTo: a@example.org\r\n"
    b"Subject: x\r\n\r\nHallo\r\n"
)


@dataclass(frozen=True)
class KeyFile:
    key: Key
    path: Path
    record: bytes


@pytest.fixture(scope="module", params=["rsa", "ed25519"])
def key_file(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> KeyFile:
    key: Key = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if request.param == "rsa"
        else ed25519.Ed25519PrivateKey.generate()
    )
    path = tmp_path_factory.mktemp("dkim") / f"{request.param}.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return KeyFile(key, path, public_record(key).encode())


def verifies(key: KeyFile, message: bytes) -> bool:
    return bool(dkimpy.verify(message, dnsfunc=lambda name, timeout=5: key.record))


def signing_children() -> list[int]:
    """Our own child processes that run the signing worker (from /proc, no mocks)."""
    return children_running(b"kzmail/dkim/worker.py")


def children_running(needle: bytes) -> list[int]:
    """Our own child processes whose command line contains `needle`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == os.getpid() and needle in command:
            found.append(int(entry.name))
    return found


def gone(pid: int) -> bool:
    """Exited and reaped: not even a zombie is left."""
    return not Path(f"/proc/{pid}").exists()


def with_dkim(project: Path, key: KeyFile) -> Path:
    campaign = project / CAMPAIGN
    with campaign.open("a", encoding="utf-8") as out:
        out.write(f"\ndkim:\n  domain: {DOMAIN}\n  selector: news\n  key_file: {key.path}\n")
    return campaign


# the pool on its own ---------------------------------------------------------------------


async def test_pool_signs_the_same_bytes_as_in_process(key_file: KeyFile) -> None:
    settings = DkimSettings(domain=DOMAIN, selector="news", key_file=key_file.path)
    signer = DkimSigner(settings, clock=lambda: 1_700_000_000.0)
    messages = [MESSAGE.replace(b"Hallo", b"Hallo %d" % i) for i in range(50)]
    async with SignPool(signer.key) as pool:
        unsigned = [signer.prepare(m) for m in messages]
        # pipelined: every request is out before the first reply is read
        signatures = await asyncio.gather(*(pool.sign(u.digest) for u in unsigned))
    for message, item, signature in zip(messages, unsigned, signatures, strict=True):
        sealed = signer.finish(item, signature)
        assert sealed == signer.sign(message)
        assert verifies(key_file, sealed)


async def test_requests_go_to_the_least_busy_of_several_workers(key_file: KeyFile) -> None:
    digests = [hashlib.sha256(b"%d" % i).digest() for i in range(40)]
    async with SignPool(key_file.key, workers=2) as pool:
        assert len(set(pool.pids)) == 2
        signatures = await asyncio.gather(*(pool.sign(d) for d in digests))
    assert signatures == [sign_digest(key_file.key, d) for d in digests]


async def test_close_leaves_no_process_behind(key_file: KeyFile) -> None:
    pool = SignPool(key_file.key, workers=2)
    await pool.start()
    pids = pool.pids
    assert sorted(signing_children()) == sorted(pids)
    await pool.close()
    assert all(gone(pid) for pid in pids)
    with pytest.raises(SigningError, match="not running"):
        await pool.sign(bytes(32))


async def test_close_after_an_error_in_the_block_leaves_no_process(key_file: KeyFile) -> None:
    pids: list[int] = []

    async def fails_inside() -> None:
        async with SignPool(key_file.key) as pool:
            pids.extend(pool.pids)
            await pool.sign(bytes(32))
            raise LookupError("something else went wrong")

    with pytest.raises(LookupError):
        await fails_inside()
    assert pids
    assert all(gone(pid) for pid in pids)


async def test_a_worker_that_cannot_start_is_one_clear_error(
    key_file: KeyFile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a real process that fails at once: the interpreter cannot open the script
    monkeypatch.setattr(signpool, "WORKER", tmp_path / "missing-worker.py")
    pool = SignPool(key_file.key)
    with pytest.raises(SigningError, match="DKIM signing process"):
        await asyncio.wait_for(pool.start(), 30)
    assert pool.pids == []
    assert children_running(b"missing-worker") == []


async def test_ctrl_c_does_not_stop_the_worker(key_file: KeyFile) -> None:
    # a terminal's Ctrl-C reaches the whole process group; the send then lets the messages in
    # flight finish, and they still need their signatures
    async with SignPool(key_file.key) as pool:
        [pid] = pool.pids
        os.kill(pid, signal.SIGINT)
        await asyncio.sleep(0.2)
        assert await pool.sign(bytes(32)) == sign_digest(key_file.key, bytes(32))


async def test_a_killed_worker_fails_pending_and_later_requests(key_file: KeyFile) -> None:
    async with SignPool(key_file.key) as pool:
        [pid] = pool.pids
        pending = [asyncio.ensure_future(pool.sign(bytes([i]) * 32)) for i in range(200)]
        await asyncio.sleep(0)  # the requests are written
        os.kill(pid, signal.SIGKILL)
        outcomes = await asyncio.wait_for(asyncio.gather(*pending, return_exceptions=True), 10)
        failed = [o for o in outcomes if isinstance(o, BaseException)]
        assert failed, "some requests must have been waiting when the worker died"
        assert all(isinstance(o, SigningError) for o in failed)
        assert "DKIM signing process" in str(failed[0])
        with pytest.raises(SigningError, match=f"pid {pid}"):
            await asyncio.wait_for(pool.sign(bytes(32)), 5)
    assert gone(pid)


# through a real send ---------------------------------------------------------------------


def test_every_message_sent_through_the_pool_verifies(
    project: Path, smtp_server: SmtpServer, key_file: KeyFile
) -> None:
    campaign = with_dkim(project, key_file)
    use_relay(campaign, smtp_server)
    result = service_send.send(current_workspace(), campaign)
    received = smtp_server.handler.messages
    assert result.report.sent == len(received) == 12
    for item in received:
        assert item.data.startswith(b"DKIM-Signature:")
        assert verifies(key_file, item.data), item.rcpt_tos
    assert signing_children() == []


def test_signatures_are_made_ahead_while_earlier_messages_go_out(
    project: Path, smtp_server: SmtpServer, key_file: KeyFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    # one connection: were messages sealed only when their lane takes them, every seal but
    # the first would come after the message before it had arrived
    campaign = with_dkim(project, key_file)
    use_relay(campaign, smtp_server)
    edit_campaign(campaign, lambda text: text.replace("connections: 4", "connections: 1"))
    arrived_at_seal: list[int] = []
    real_sealer = app.Prepared.sealer

    def counting_sealer(prepared: app.Prepared, pool: SignPool) -> Sealer:
        sealed = real_sealer(prepared, pool)

        def seal(message: Outgoing) -> Awaitable[Outgoing]:
            arrived_at_seal.append(len(smtp_server.handler.messages))
            return sealed(message)

        return seal

    monkeypatch.setattr(app.Prepared, "sealer", counting_sealer)
    result = service_send.send(current_workspace(), campaign)
    assert result.report.sent == len(smtp_server.handler.messages) == 12
    assert arrived_at_seal.count(0) > 1  # sealed before the first one was sent
    for item in smtp_server.handler.messages:
        assert verifies(key_file, item.data)


@dataclass
class KillingHandler:
    """Accepts messages; after the `after`-th, kills our signing process (SIGKILL)."""

    after: int
    messages: list[bytes] = field(default_factory=list)
    recipients: list[str] = field(default_factory=list)
    killed: list[int] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.messages.append(bytes(envelope.original_content or b""))
        self.recipients += envelope.rcpt_tos
        if len(self.messages) == self.after:
            for pid in signing_children():
                os.kill(pid, signal.SIGKILL)
                self.killed.append(pid)
        await asyncio.sleep(0.05)  # keep the send going while the worker dies
        return "250 OK queued"


def test_killing_the_signing_process_mid_send_fails_cleanly(
    project: Path, key_file: KeyFile
) -> None:
    campaign = with_dkim(project, key_file)
    handler = KillingHandler(after=3)
    # more subscribers than the sender seals ahead (4 per connection): some still wait
    # for a signature when the signing process dies
    use_long_list(campaign, 40)
    with smtp_in_thread(
        lambda: SMTP(handler, hostname="test.localhost", decode_data=False)
    ) as port:
        edit_campaign(
            campaign,
            lambda text: (
                text.replace("host: local", "host: 127.0.0.1")
                .replace("port: 587", f"port: {port}")
                .replace("tls: starttls", "tls: none")
            ),
        )
        result = CliRunner().invoke(cli, ["send", str(campaign), "--yes"])
    assert handler.killed, "the signing process was not found"
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "DKIM signing process" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert len(handler.messages) < 40
    for data in handler.messages:
        assert verifies(key_file, data)
    journal = Journal(project / ".kzmail")
    try:
        sent = {d.address for d in journal.deliveries("kasachstan", ("sent",))}
    finally:
        journal.close()
    assert sent <= {r.lower() for r in handler.recipients}  # nothing sent that did not go
    assert all(gone(pid) for pid in handler.killed)
    assert signing_children() == []

"""End to end through a real Postfix relay on loopback: kzmail -> Postfix -> aiosmtpd sink.

The fixture runs a private Postfix instance (its own config, queue and data folders, its
own port), so it neither needs nor touches the machine's /etc/postfix, and stops it on
teardown. Postfix refuses one scripted address for good (550) and defers another (451).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kzmail.cli.common import current_workspace
from kzmail.models import ANY_LIST
from kzmail.services import send
from kzmail.state.journal import Journal
from tests.helpers.campaigns import edit_campaign
from tests.helpers.servers import FaultServer, fault_server

REJECT = "reject@example.org"
DEFER = "defer@example.org"


@dataclass
class Relay:
    port: int
    sink: FaultServer
    log: Path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for_port(port: int, seconds: float, log: Path) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"
    pytest.fail(f"Postfix did not open port {port} within {seconds} s; its log:\n{tail}")


def _postconf(conf: Path, *args: str) -> None:
    subprocess.run(["postconf", "-c", str(conf), *args], check=True, capture_output=True)


@pytest.fixture
def postfix_relay() -> Iterator[Relay]:
    if shutil.which("postfix") is None or shutil.which("postconf") is None:
        pytest.fail(
            "Postfix is not installed: run scripts/system-deps.sh as root "
            "(./dev test does), it installs the Debian package"
        )
    if os.geteuid() != 0:
        pytest.fail("the Postfix test starts a private Postfix instance and must run as root")
    # not under pytest's 0700 tmp folders: Postfix's own user must reach these
    base = Path(tempfile.mkdtemp(prefix="kzmail-postfix-", dir="/tmp"))
    base.chmod(0o755)
    conf, queue, data = base / "etc", base / "spool", base / "data"
    for folder in (conf, queue, data):
        folder.mkdir()
    shutil.chown(data, "postfix")
    for name in ("main.cf", "master.cf", "dynamicmaps.cf"):
        if (Path("/etc/postfix") / name).exists():
            shutil.copy(Path("/etc/postfix") / name, conf / name)
    log = base / "postfix.log"
    port = _free_port()
    with fault_server() as sink:
        _postconf(
            conf,
            "-e",
            f"queue_directory = {queue}",
            f"data_directory = {data}",
            "inet_interfaces = loopback-only",
            "inet_protocols = ipv4",
            "mydestination =",
            f"relayhost = [127.0.0.1]:{sink.port}",
            "mynetworks = 127.0.0.0/8",
            "smtp_dns_support_level = disabled",
            f"maillog_file = {log}",
            f"maillog_file_prefixes = {base}",
            "myhostname = relay.kzmail.test",
            f"syslog_name = kzmail-postfix-{port}",
            "alias_maps =",
            "alias_database =",
            "smtpd_relay_restrictions = permit_mynetworks, reject",
            "smtpd_recipient_restrictions = check_recipient_access inline:{ "
            f"{{{REJECT}=550 5.1.1 no such user}}, {{{DEFER}=451 4.7.1 try later}} }}, "
            "permit_mynetworks, reject",
        )
        _postconf(conf, "-X", "default_transport", "relay_transport")
        _postconf(conf, "-M", "-X", "smtp/inet")
        _postconf(conf, "-M", f"{port}/inet={port} inet n - n - - smtpd")
        _postconf(conf, "-F", "*/*/chroot = n")
        started = subprocess.run(
            ["postfix", "-c", str(conf), "start"], capture_output=True, text=True
        )
        try:
            if started.returncode != 0:
                pytest.fail(
                    f"postfix start failed: {started.stderr}\n"
                    f"{log.read_text(errors='replace') if log.exists() else ''}"
                )
            _wait_for_port(port, 20, log)
            yield Relay(port, sink, log)
        finally:
            subprocess.run(["postfix", "-c", str(conf), "stop"], capture_output=True)
            shutil.rmtree(base, ignore_errors=True)


def test_a_campaign_through_postfix_arrives_once_each(project: Path, postfix_relay: Relay) -> None:
    listing = project / "subscribers.example.csv"
    valid = [line.split(",")[0] for line in listing.read_text().splitlines()[1:]]
    listing.write_text(listing.read_text() + f"{REJECT},Nobody,X\n{DEFER},Later,Y\n")
    campaign = project / "campaigns" / "kasachstan.yaml"
    edit_campaign(
        campaign,
        lambda text: (
            text.replace("host: local", "host: 127.0.0.1")
            .replace("port: 587", f"port: {postfix_relay.port}")
            .replace("tls: starttls", "tls: none")
            .replace("per_second: 10", "per_second: 0")
            + "\nretry:\n  attempts: 2\n  backoff: 0.05\n"
        ),
    )

    result = send.send(current_workspace(), campaign)

    assert (result.report.sent, result.report.failed) == (len(valid), 2)
    handler = postfix_relay.sink.handler
    deadline = time.monotonic() + 30
    while len(handler.arrivals) < len(valid) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)  # anything more (a duplicate) would arrive now
    assert sorted(a.recipient for a in handler.arrivals) == sorted(valid), (
        postfix_relay.log.read_text(errors="replace")[-2000:]
    )
    journal = Journal(project / ".kzmail")
    sent = {d.address: d.message_id for d in journal.deliveries("kasachstan", ("sent",))}
    assert {a.recipient: a.message_id for a in handler.arrivals} == sent
    failed = {d.address: d for d in journal.deliveries("kasachstan", ("failed",))}
    assert failed[REJECT].code == 550
    assert not failed[REJECT].retryable
    assert journal.is_suppressed(ANY_LIST, REJECT)
    assert failed[DEFER].code == 451
    assert failed[DEFER].retryable
    assert failed[DEFER].attempts == 2
    for arrival in handler.arrivals:  # each one really went through Postfix
        assert b"by relay.kzmail.test (Postfix)" in arrival.data

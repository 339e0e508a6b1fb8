"""Durable before the dot: in syscall order, no message's final CRLF.CRLF leaves before an
fdatasync/fsync of the WAL file that holds the `sending` record naming its recipient.

A real send to a real SMTP server (aiosmtpd in this process), with `kzmail send` run under
strace (-f: every thread, -y: file names for descriptors). A process kill keeps the kernel's
page cache, so the SIGKILL test cannot see this; a power cut loses what was never synced.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.helpers.campaigns import edit_campaign, use_relay
from tests.helpers.smtp import SmtpServer

KZMAIL = Path(sys.executable).with_name("kzmail")
CALL = re.compile(r"^\d+\s+(?:<\.\.\. )?(\w+)(?: resumed>)?\(?(.*)$")
FD = re.compile(r"^(\d+)<([^>]*)>")
RCPT = re.compile(r"RCPT TO:<([^>]+)>")
END_OF_DATA = re.compile(r'\\r\\n\.\\r\\n"')


@dataclass
class Order:
    """What the trace shows, in order: what the WAL holds, what is synced, what was sent."""

    addresses: set[str]
    written: set[str] = field(default_factory=set)  # in the WAL, maybe not yet on disk
    durable: set[str] = field(default_factory=set)  # in the WAL and synced since
    recipient: dict[str, str] = field(default_factory=dict)  # socket -> its RCPT TO
    dots: list[tuple[str, bool]] = field(default_factory=list)  # (recipient, was durable)

    def read(self, line: str) -> None:
        found = CALL.match(line)
        if found is None:
            return
        name, rest = found.groups()
        if "resumed>" in line and name in ("fsync", "fdatasync") and "= 0" in rest:
            self.durable |= self.written  # the sync started earlier has returned
            return
        target = FD.match(rest)
        if target is None:
            return
        where = target.group(2)
        if name == "pwrite64" and where.endswith("-wal"):
            self.written |= {a for a in self.addresses if a in rest}
        elif name in ("fsync", "fdatasync") and where.endswith("-wal") and rest.endswith("= 0"):
            self.durable |= self.written
        elif name in ("sendto", "write", "writev", "sendmsg") and where.startswith(
            ("TCP:", "socket:")
        ):
            for rcpt in RCPT.findall(rest):
                self.recipient[where] = rcpt
            if END_OF_DATA.search(rest) and where in self.recipient:
                rcpt = self.recipient[where]
                self.dots.append((rcpt, rcpt in self.durable))


@pytest.fixture
def strace() -> str:
    found = shutil.which("strace")
    if found is None:
        pytest.fail("strace is not installed: run scripts/system-deps.sh as root")
    return found


def test_every_final_dot_follows_a_sync_of_its_sending_record(
    project: Path, smtp_server: SmtpServer, strace: str
) -> None:
    campaign = project / "campaigns/kasachstan.yaml"
    use_relay(campaign, smtp_server)
    edit_campaign(campaign, lambda text: text.replace("per_second: 10", "per_second: 0"))
    trace = project / "trace.txt"
    done = subprocess.run(
        [strace, "-f", "-y", "-qq", "-s", "200000", "-o", str(trace),
         "-e", "trace=pwrite64,write,writev,sendto,sendmsg,fsync,fdatasync",
         str(KZMAIL), "send", str(campaign), "--yes"],
        cwd=project, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    sent = [m.rcpt_tos[0].lower() for m in smtp_server.handler.messages]
    assert len(sent) == 12
    order = Order(set(sent))
    with trace.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            order.read(line.rstrip("\n"))
    assert sorted(r for r, _ in order.dots) == sorted(sent)  # every message's dot was seen
    early = [r for r, durable in order.dots if not durable]
    assert early == [], f"{len(early)} of {len(order.dots)} dots left before their sync"

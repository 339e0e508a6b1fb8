"""A private Postfix on loopback that delivers to Maildirs and bounces like a provider.

Its own config, queue and data folders and port (the machine's /etc/postfix is only copied).
Mail for `MAILBOXES` lands in `<base>/mail/<domain>/<local>/`; mail for any other address of
a virtual domain is accepted and answered later with a real RFC 3464 DSN to the envelope
sender (Postfix's `virtual` agent: "unknown user"); mail for other domains goes out by
`smtp` and bounces when the domain does not resolve. `transports` send a domain to a
test server instead (`smtp:[127.0.0.1]:PORT`), and `settings` are more `main.cf` lines
(short queue lifetimes, to see a message expire).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

VMAIL_UID = 5000


@dataclass
class MailboxRelay:
    port: int
    base: Path
    log: Path
    conf: Path

    def maildir(self, address: str) -> Path:
        local, _, domain = address.partition("@")
        return self.base / "mail" / domain / local

    def flush(self) -> None:
        subprocess.run(["postqueue", "-c", str(self.conf), "-f"], capture_output=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for_port(port: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def _postconf(conf: Path, *args: str) -> None:
    subprocess.run(["postconf", "-c", str(conf), *args], check=True, capture_output=True)


@contextmanager
def mailbox_relay(
    domains: list[str],
    mailboxes: list[str],
    *,
    transports: dict[str, str] | None = None,
    settings: tuple[str, ...] = (),
) -> Iterator[MailboxRelay]:
    if shutil.which("postfix") is None or os.geteuid() != 0:
        raise RuntimeError("needs Postfix (scripts/system-deps.sh) and root")
    base = Path(tempfile.mkdtemp(prefix="kzmail-postfix-mx-", dir="/tmp"))
    base.chmod(0o755)
    conf, queue, data, mail = base / "etc", base / "spool", base / "data", base / "mail"
    for folder in (conf, queue, data, mail):
        folder.mkdir()
    shutil.chown(data, "postfix")
    os.chown(mail, VMAIL_UID, VMAIL_UID)
    for name in ("main.cf", "master.cf", "dynamicmaps.cf"):
        if (Path("/etc/postfix") / name).exists():
            shutil.copy(Path("/etc/postfix") / name, conf / name)
    vmailbox = base / "vmailbox"
    vmailbox.write_text(
        "".join(f"{a} {a.partition('@')[2]}/{a.partition('@')[0]}/\n" for a in mailboxes)
    )
    log, port = base / "postfix.log", free_port()
    _postconf(
        conf,
        "-e",
        f"queue_directory = {queue}",
        f"data_directory = {data}",
        "inet_interfaces = loopback-only",
        "inet_protocols = ipv4",
        "mydestination =",
        "relayhost =",
        "mynetworks = 127.0.0.0/8",
        "smtp_dns_support_level = disabled",
        f"maillog_file = {log}",
        f"maillog_file_prefixes = {base}",
        "myhostname = mx.kzmail.test",
        f"syslog_name = kzmail-postfix-mx-{port}",
        "alias_maps =",
        "alias_database =",
        "smtpd_relay_restrictions = permit_mynetworks, reject",
        f"virtual_mailbox_domains = {', '.join(domains)}",
        f"virtual_mailbox_base = {mail}",
        f"virtual_mailbox_maps = texthash:{vmailbox}",
        f"virtual_uid_maps = static:{VMAIL_UID}",
        f"virtual_gid_maps = static:{VMAIL_UID}",
        "virtual_minimum_uid = 100",
        "smtpd_reject_unlisted_recipient = no",
        "smtp_host_lookup = native",
        *settings,
    )
    if transports:
        table = base / "transport"
        table.write_text("".join(f"{d} {t}\n" for d, t in transports.items()))
        _postconf(conf, "-e", f"transport_maps = texthash:{table}")
    _postconf(conf, "-X", "default_transport", "relay_transport")
    _postconf(conf, "-M", "-X", "smtp/inet")
    _postconf(conf, "-M", f"{port}/inet={port} inet n - n - - smtpd")
    _postconf(conf, "-F", "*/*/chroot = n")
    started = subprocess.run(["postfix", "-c", str(conf), "start"], capture_output=True, text=True)
    try:
        if started.returncode != 0 or not _wait_for_port(port, 20):
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"postfix did not start: {started.stderr}\n{tail}")
        yield MailboxRelay(port, base, log, conf)
    finally:
        subprocess.run(["postfix", "-c", str(conf), "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def wait_for_messages(folder: Path, count: int, seconds: float, relay: MailboxRelay) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        new = folder / "new"
        if new.is_dir() and len(list(new.iterdir())) >= count:
            return
        relay.flush()
        time.sleep(0.3)
    tail = relay.log.read_text(errors="replace")[-3000:] if relay.log.exists() else ""
    raise AssertionError(f"{count} messages did not arrive in {folder}; Postfix log:\n{tail}")

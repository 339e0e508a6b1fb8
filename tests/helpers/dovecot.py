"""A private Dovecot IMAP(S) server on loopback, as the organiser's reply mailbox.

Its own config, run folder, users file, self-signed certificate (for 127.0.0.1) and
ephemeral ports; started with `dovecot -c`, stopped through its master.pid.
"""

from __future__ import annotations

import imaplib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.helpers.postfix_mailbox import free_port

USER, PASSWORD = "orga", "geheim"


@dataclass
class Dovecot:
    base: Path
    imaps_port: int
    cert: Path

    def connect(self) -> imaplib.IMAP4_SSL:
        context = ssl.create_default_context(cafile=self.cert)
        imap = imaplib.IMAP4_SSL("127.0.0.1", self.imaps_port, ssl_context=context)
        imap.login(USER, PASSWORD)
        return imap


def _config(base: Path, imap_port: int, imaps_port: int) -> str:
    return f"""protocols = imap
listen = 127.0.0.1
base_dir = {base}/run
log_path = {base}/dovecot.log
auth_mechanisms = plain login
disable_plaintext_auth = no
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {base}/users
}}
userdb {{
  driver = static
  args = uid=mail gid=mail home={base}/mail/%u
}}
first_valid_uid = 8
mail_location = maildir:~/Maildir
ssl = yes
ssl_cert = <{base}/cert.pem
ssl_key = <{base}/key.pem
service imap-login {{
  inet_listener imap {{
    port = {imap_port}
  }}
  inet_listener imaps {{
    port = {imaps_port}
    ssl = yes
  }}
}}
"""


def _ready(port: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


@contextmanager
def dovecot() -> Iterator[Dovecot]:
    if shutil.which("dovecot") is None or os.geteuid() != 0:
        raise RuntimeError("needs Debian's dovecot-imapd (scripts/apt-packages.txt) and root")
    base = Path(tempfile.mkdtemp(prefix="kzmail-dovecot-", dir="/tmp"))
    base.chmod(0o755)
    (base / "mail").mkdir()
    shutil.chown(base / "mail", "mail", "mail")
    (base / "users").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(base / "key.pem"),
            "-out",
            str(base / "cert.pem"),
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )
    imap_port, imaps_port = free_port(), free_port()
    (base / "dovecot.conf").write_text(_config(base, imap_port, imaps_port))
    # the daemon keeps inherited pipes open: its output goes to a file, not to us
    with (base / "start.log").open("w") as start_log:
        started = subprocess.run(
            ["dovecot", "-c", str(base / "dovecot.conf")],
            stdin=subprocess.DEVNULL,
            stdout=start_log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        if started.returncode != 0 or not _ready(imaps_port, 20):
            log = base / "dovecot.log"
            raise RuntimeError(
                f"dovecot did not start: {(base / 'start.log').read_text()} "
                f"{log.read_text(errors='replace')[-2000:] if log.exists() else ''}"
            )
        yield Dovecot(base, imaps_port, base / "cert.pem")
    finally:
        pid_file = base / "run" / "master.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text().split()[0])
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and pid_file.exists():
                time.sleep(0.1)
        shutil.rmtree(base, ignore_errors=True)

"""`kzmail server bundle`: the public unsubscribe server's whole state folder, made on the
organiser's machine.

The bundle holds what the server needs and nothing it does not: the secrets that check
unsubscribe tokens (`secret.key`, `secret.retired`), the organiser's public sealing key,
the SHA-256 of the sync credential, and each list's name, language and page texts
(`server.json`); plus a hardened systemd unit and Caddy/nginx snippets. No campaign file,
template, subscriber list or address. The organiser's state keeps the private sealing key
and the credential itself (`servers.json`), so `sync`, `send` and `check` can pull records.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from kzmail import campaign_file
from kzmail.errors import InputError, StateError
from kzmail.models import Workspace
from kzmail.private import private_folder
from kzmail.sealing import load_private, public_of
from kzmail.services.unsubscribe import list_directory
from kzmail.state.secret import RETIRED_FILE, SECRET_FILE, load_retired, load_secret
from kzmail.state.servers import ServerEntry, remember
from kzmail.web.unsubscribe import texts_for

BUNDLE_FILE = "server.json"
UNIT_FILE = "kzmail-unsubscribe.service"
SERVER_DIR = "/var/lib/kzmail-unsubscribe"  # where the unit expects the bundle on the VPS
KZMAIL_BIN = "/opt/kzmail/bin/kzmail"

UNIT = """\
# kzmail's public unsubscribe server, from a bundle made by `kzmail server bundle`.
# Copy the bundle to {server_dir}, this file to /etc/systemd/system/, then:
#   systemctl daemon-reload && systemctl enable --now kzmail-unsubscribe
[Unit]
Description=kzmail unsubscribe server (holds no subscriber list)
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
ExecStart={kzmail} serve --host 127.0.0.1 --port {port}
Environment=KZMAIL_STATE_DIR={server_dir}
DynamicUser=yes
StateDirectory={state_name}
StateDirectoryMode=0700
ReadWritePaths={server_dir}
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
NoNewPrivileges=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
SystemCallArchitectures=native
CapabilityBoundingSet=
UMask=0077
MemoryMax=256M
TasksMax=64
Restart=on-failure

[Install]
WantedBy=multi-user.target
"""

CADDY = """\
# /etc/caddy/Caddyfile: HTTPS is automatic, and Caddy logs no requests unless told to.
{host} {{
    request_body {{
        max_size 16KB
    }}
    {handle} {{
        reverse_proxy 127.0.0.1:{port}
    }}
}}
"""

NGINX = """\
# nginx: HTTPS in front of the unsubscribe server; no access log (the URLs are links).
server {{
    listen 443 ssl;
    server_name {host};
    ssl_certificate     /etc/letsencrypt/live/{host}/fullchain.pem;
    ssl_certificate_key /etc/letsencrypt/live/{host}/privkey.pem;
    access_log off;
    client_max_body_size 16k;
    location {prefix}/ {{
        limit_except GET POST {{ deny all; }}
        proxy_pass http://127.0.0.1:{port}/;
    }}
}}
"""


@dataclass(frozen=True)
class Bundle:
    folder: Path
    lists: tuple[str, ...]
    sync_url: str
    files: tuple[str, ...]


def is_bundle(state: Path) -> bool:
    """True if this state folder is a server bundle (so `serve` runs from it alone)."""
    return (state / BUNDLE_FILE).is_file()


def read_bundle(state: Path) -> dict[str, object]:
    path = state / BUNDLE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StateError(f"{path}: not a server bundle ({exc})") from exc
    if not isinstance(data, dict) or data.get("format") != 1:
        raise StateError(f"{path}: not a server bundle this kzmail knows (format 1)")
    return data


def _write(path: Path, text: str, mode: int = 0o600) -> None:
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def make_bundle(
    ws: Workspace,
    campaigns: Sequence[Path],
    out: Path,
    *,
    sync_url: str | None = None,
    kzmail: str = KZMAIL_BIN,
    server_dir: str = SERVER_DIR,
    port: int = 8025,
) -> Bundle:
    """Write the server's state folder to `out` and remember its credential here."""
    if not campaigns:
        raise InputError("name at least one campaign whose links the server answers")
    lists = list_directory(list(campaigns))
    first = campaign_file.load(campaigns[0])
    url = (sync_url or first.unsubscribe.url).rstrip("/")
    if out.exists() and any(out.iterdir()) and not is_bundle(out):
        raise InputError("the folder exists and is not a server bundle", path=out, key="--out")
    secret = load_secret(ws.state)  # made now if this project never sent
    retired = load_retired(ws.state)
    credential = secrets.token_urlsafe(32)
    server_id = secrets.token_hex(8)
    data = {
        "format": 1,
        "id": server_id,
        "seal_public": public_of(load_private(ws.state)).hex(),
        "credential_sha256": hashlib.sha256(credential.encode()).hexdigest(),
        "lists": {
            list_id: {
                "name": info.name,
                "language": info.language,
                "texts": texts_for(info.language),
            }
            for list_id, info in lists.items()
        },
    }
    parts = urlsplit(first.unsubscribe.url)
    prefix = parts.path.rstrip("/")
    try:
        private_folder(out)
        _write(out / BUNDLE_FILE, json.dumps(data, ensure_ascii=False, indent=2) + "\n")
        _write(out / SECRET_FILE, secret.hex() + "\n")
        lines = ["# retired unsubscribe secrets: hex retired_at valid_until (Unix time)"]
        lines += [f"{r.secret.hex()} {r.retired_at:.3f} {r.valid_until:.3f}" for r in retired]
        _write(out / RETIRED_FILE, "\n".join(lines) + "\n")
        name = Path(server_dir).name
        _write(
            out / UNIT_FILE,
            UNIT.format(kzmail=kzmail, port=port, server_dir=server_dir, state_name=name),
            0o644,
        )
        handle = f"handle_path {prefix}/*" if prefix else "handle"
        _write(
            out / "Caddyfile", CADDY.format(host=parts.hostname, handle=handle, port=port), 0o644
        )
        _write(
            out / "nginx.conf", NGINX.format(host=parts.hostname, prefix=prefix, port=port), 0o644
        )
    except OSError as exc:
        raise StateError(f"cannot write the bundle: {exc.strerror or exc}") from exc
    remember(ws.state, ServerEntry(server_id, url, credential, tuple(sorted(lists))))
    files = (BUNDLE_FILE, SECRET_FILE, RETIRED_FILE, UNIT_FILE, "Caddyfile", "nginx.conf")
    return Bundle(out, tuple(sorted(lists)), url, files)

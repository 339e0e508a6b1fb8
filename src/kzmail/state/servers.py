"""The organiser's record of the unsubscribe servers it made bundles for (`servers.json`).

One entry per bundle: its id, the lists it serves, the URL to sync from, the credential
(secret: the file is 0600) and the cursor of the last record synced. `send` and `check`
sync first for a list that has an entry; a list without one never goes online.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from kzmail.errors import StateError
from kzmail.private import private_folder

SERVERS_FILE = "servers.json"


@dataclass(frozen=True)
class ServerEntry:
    id: str
    url: str
    credential: str
    lists: tuple[str, ...]
    cursor: int = 0

    def moved_to(self, cursor: int) -> ServerEntry:
        return replace(self, cursor=cursor)


def load_servers(state_dir: Path) -> list[ServerEntry]:
    path = state_dir / SERVERS_FILE
    try:
        if not path.exists():
            return []
        data = json.loads(path.read_text(encoding="utf-8"))
        return [
            ServerEntry(e["id"], e["url"], e["credential"], tuple(e["lists"]), int(e["cursor"]))
            for e in data["servers"]
        ]
    except (ValueError, KeyError, TypeError) as exc:
        raise StateError(f"{path}: not a list of unsubscribe servers ({exc})") from None
    except OSError as exc:
        raise StateError(f"cannot read {path}: {exc.strerror or exc}") from exc


def save_servers(state_dir: Path, entries: list[ServerEntry]) -> None:
    path = state_dir / SERVERS_FILE
    tmp = path.with_name(path.name + ".tmp")
    data = {"servers": [asdict(e) | {"lists": list(e.lists)} for e in entries]}
    try:
        private_folder(state_dir)
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise StateError(f"cannot write {path}: {exc.strerror or exc}") from exc


def remember(state_dir: Path, entry: ServerEntry) -> None:
    """Add `entry`, replacing an earlier bundle for exactly the same lists."""
    kept = [e for e in load_servers(state_dir) if e.id != entry.id and e.lists != entry.lists]
    save_servers(state_dir, [*kept, entry])


def advance(state_dir: Path, server_id: str, cursor: int) -> None:
    """Record that everything up to `cursor` of this server is synced."""
    entries = load_servers(state_dir)
    save_servers(state_dir, [e.moved_to(cursor) if e.id == server_id else e for e in entries])

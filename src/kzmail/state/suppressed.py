"""One list's suppressions held in memory while a send checks every subscriber against them.

A query per subscriber would cost a read transaction each (see
docs/decisions/0005-suppressions-in-memory.md).
The copy takes the connection's own suppressions at once (`add`), and another process's (an
unsubscribe arriving mid-send) within `FRESH` seconds: SQLite's `data_version` changes when
another connection commits, and only then is the copy loaded again. A suppression is
removed only by the organiser (`Journal.unsuppress`, which makes a fresh copy); another
process's copy may then hold it up to `FRESH` seconds longer, so a copy errs on the side
of not mailing.
"""

from __future__ import annotations

import hashlib
import hmac
import sqlite3
import time

# seconds an unsubscribe written by another process may take to reach a running send
FRESH = 0.1
# a forgotten person's suppression (`kzmail forget`): a keyed hash instead of the address
HASHED = "hmac:"


def hashed(key: bytes, address: str) -> str:
    """The stored form of a forgotten (lowered) address: never an address itself (no @)."""
    return HASHED + hmac.new(key, address.encode(), hashlib.sha256).hexdigest()


def hash_key(db: sqlite3.Connection) -> bytes | None:
    """The state's key for hashed suppressions, None until something was forgotten."""
    row = db.execute("SELECT value FROM keys WHERE name='suppression'").fetchone()
    return None if row is None else bytes(row[0])


class SuppressedCopy:
    """`contains(list_id, address)` from memory, reloaded when the database changed."""

    def __init__(self, db: sqlite3.Connection, any_list: str) -> None:
        self._db = db
        self._any = any_list
        self._addresses: set[str] = set()
        self._hashed: set[str] = set()
        self._key = b""
        self._list: str | None = None
        self._version = -1
        self._until = 0.0

    def contains(self, list_id: str, address: str) -> bool:
        """True if `address` (lowered) is suppressed for `list_id` or for every list."""
        now = time.monotonic()
        if list_id != self._list or now >= self._until:
            self._refresh(list_id, now)
        if address in self._addresses:
            return True
        return bool(self._hashed) and hashed(self._key, address) in self._hashed

    def add(self, list_id: str, address: str) -> None:
        """This connection suppressed `address` (lowered) for `list_id`."""
        if list_id in (self._list, self._any):
            self._addresses.add(address)

    def _refresh(self, list_id: str, now: float) -> None:
        (version,) = self._db.execute("PRAGMA data_version").fetchone()
        if list_id != self._list or version != self._version:
            rows = self._db.execute(
                "SELECT address FROM suppressions WHERE list_id IN (?, ?)", (list_id, self._any)
            )
            found = {str(address) for (address,) in rows}
            self._hashed = {a for a in found if a.startswith(HASHED)}
            self._addresses = found - self._hashed
            self._key = (hash_key(self._db) or b"") if self._hashed else b""
            self._list, self._version = list_id, version
        # a long list takes a while to load: it is then loaded less often (<= 5 % of time)
        self._until = time.monotonic() + max(FRESH, 20 * (time.monotonic() - now))

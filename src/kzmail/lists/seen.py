"""Remember which addresses a run has seen, in a temporary SQLite database.

A million addresses in a Python dict would cost well over 100 MB; SQLite keeps them in a
private temporary file with a small page cache, so memory stays flat however long the
list is. Addresses are compared case-insensitively (the caller passes them lowered).
"""

from __future__ import annotations

import sqlite3

from kzmail.errors import StateError

_SCHEMA = """
CREATE TABLE seen (address TEXT PRIMARY KEY, file INTEGER, line INTEGER, state TEXT)
    WITHOUT ROWID;
CREATE TABLE marked (address TEXT PRIMARY KEY, file INTEGER, line INTEGER) WITHOUT ROWID;
"""


class SeenAddresses:
    """First sighting of each address in a pass, and addresses a list marks unsubscribed.

    `seen` is cleared by `new_pass`; `marked` survives passes, so a second pass can skip
    an address whose unsubscribed mark only came later in the first.
    """

    def __init__(self, cache_kib: int = 8192) -> None:
        try:
            # "" = a private on-disk temporary database that SQLite deletes on close.
            self._db = sqlite3.connect("", isolation_level=None)
            self._db.execute(f"PRAGMA cache_size=-{int(cache_kib)}")
            self._db.execute("PRAGMA journal_mode=OFF")
            self._db.execute("PRAGMA synchronous=OFF")
            self._db.executescript(_SCHEMA)
            self._db.execute("BEGIN")
        except sqlite3.Error as exc:
            raise StateError(f"cannot create a temporary database: {exc}") from exc
        self.marked_count = 0

    def close(self) -> None:
        self._db.close()

    def new_pass(self) -> None:
        self._db.execute("DELETE FROM seen")

    def first(self, address: str, file: int, line: int, state: str) -> tuple[int, int, str] | None:
        """Record `address` unless seen before; return the earlier (file, line, state)."""
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO seen VALUES (?, ?, ?, ?)", (address, file, line, state)
        )
        if cursor.rowcount == 1:
            return None
        row = self._db.execute(
            "SELECT file, line, state FROM seen WHERE address=?", (address,)
        ).fetchone()
        return int(row[0]), int(row[1]), str(row[2])

    def set_state(self, address: str, state: str) -> None:
        self._db.execute("UPDATE seen SET state=? WHERE address=?", (state, address))

    def mark(self, address: str, file: int, line: int) -> None:
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO marked VALUES (?, ?, ?)", (address, file, line)
        )
        self.marked_count += cursor.rowcount

    def marked(self, address: str) -> tuple[int, int] | None:
        """Where the list marks `address` unsubscribed, if anywhere (any pass so far)."""
        if not self.marked_count:
            return None
        row = self._db.execute(
            "SELECT file, line FROM marked WHERE address=?", (address,)
        ).fetchone()
        return None if row is None else (int(row[0]), int(row[1]))

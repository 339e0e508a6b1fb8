"""The public server's outbox: sealed records, numbered, until the organiser has synced them.

`RecordStore` keeps opaque boxes (see `kzmail.sealing`) in `records.db` in the server's
folder, each with a sequence number: `after(cursor)` hands on the next ones, `forget_through`
drops those the organiser acknowledged. It never sees what a box holds. Every write is on
stable storage before `add` returns, so an answered one-click is never lost.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from kzmail.errors import StateError
from kzmail.private import private_folder, private_umask

RECORDS_FILE = "records.db"


class RecordStore:
    """Sealed records in one SQLite file, safe to call from any thread."""

    def __init__(self, folder: Path) -> None:
        self._lock = threading.Lock()
        try:
            private_folder(folder)
            with private_umask():
                self._db = sqlite3.connect(
                    folder / RECORDS_FILE, isolation_level=None, check_same_thread=False
                )
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS records "
                    "(seq INTEGER PRIMARY KEY AUTOINCREMENT, box BLOB NOT NULL)"
                )
        except (sqlite3.Error, OSError) as exc:
            raise StateError(f"cannot use {folder / RECORDS_FILE}: {exc}") from exc

    def add(self, box: bytes) -> int:
        """Keep one sealed record; its sequence number."""
        try:
            with self._lock:
                cursor = self._db.execute("INSERT INTO records (box) VALUES (?)", (box,))
                return int(cursor.lastrowid or 0)
        except sqlite3.Error as exc:
            raise StateError(f"cannot record: {exc}") from exc

    def after(self, cursor: int, limit: int = 500) -> list[tuple[int, bytes]]:
        """Up to `limit` records numbered above `cursor`, in order."""
        try:
            with self._lock:
                rows = self._db.execute(
                    "SELECT seq, box FROM records WHERE seq > ? ORDER BY seq LIMIT ?",
                    (cursor, limit),
                ).fetchall()
        except sqlite3.Error as exc:
            raise StateError(f"cannot read the records: {exc}") from exc
        return [(int(seq), bytes(box)) for seq, box in rows]

    def forget_through(self, cursor: int) -> int:
        """Drop the records numbered up to `cursor` (synced); how many were dropped."""
        try:
            with self._lock:
                return self._db.execute("DELETE FROM records WHERE seq <= ?", (cursor,)).rowcount
        except sqlite3.Error as exc:
            raise StateError(f"cannot forget the records: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()

"""WAL checkpoints for the state database, in a thread and a connection of their own."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path


class Checkpointer:
    """Copies the WAL into the database every second, in its own thread and connection,
    so the fsync that goes with it never stalls the sending loop."""

    def __init__(self, path: Path, every: float = 1.0) -> None:
        self._path = path
        self._every = every
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kzmail-checkpoint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        db = sqlite3.connect(self._path, isolation_level=None)
        try:
            while not self._stopped.wait(self._every):
                db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error:
            pass  # the writer's own autocheckpoint is the fallback
        finally:
            db.close()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(10)


__all__ = ["Checkpointer"]

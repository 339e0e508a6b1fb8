"""A Journal together with its SQLite connection, caught as `sqlite3.connect` opens it, so
that a test can trace or cap that connection through sqlite3's own API (and no test needs
the Journal's private attributes)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from kzmail.state.journal import Journal


def open_watched(state_dir: Path) -> tuple[Journal, sqlite3.Connection]:
    """A Journal on `state_dir`, and the one connection it opened for itself."""
    opened: list[sqlite3.Connection] = []
    real_connect = sqlite3.connect

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        connection: sqlite3.Connection = real_connect(*args, **kwargs)
        opened.append(connection)
        return connection

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sqlite3, "connect", connect)
        journal = Journal(state_dir)
    (connection,) = opened  # one connection (its checkpoint thread opens one later)
    return journal, connection

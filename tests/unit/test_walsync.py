"""WalSync syncs a quick disk on the loop's thread and a slow one in a thread of its own;
either way `covering` returns only after an fdatasync that started after the commit."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from kzmail.state.durable import WalSync


def _database(tmp_path: Path) -> Path:
    path = tmp_path / "state.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE t (x)")
    db.execute("INSERT INTO t VALUES (1)")
    db.close()  # the last connection removes the WAL: WalSync syncs the file, so make one
    path.with_name("state.db-wal").touch()
    return path


def _ticks(step: float) -> Iterator[float]:
    now = 0.0
    while True:
        yield now
        now += step


async def _commits(sync: WalSync, count: int) -> None:
    for _ in range(count):
        await sync.covering(sync.wrote())


def test_a_quick_disk_is_synced_inline(tmp_path: Path) -> None:
    sync = WalSync(_database(tmp_path), timer=_ticks(0.0001).__next__)
    asyncio.run(_commits(sync, 5))
    sync.close()
    assert sync.threaded == 0


def test_a_slow_disk_is_synced_in_a_thread(tmp_path: Path) -> None:
    sync = WalSync(_database(tmp_path), timer=_ticks(0.01).__next__)
    asyncio.run(_commits(sync, 5))
    sync.close()
    assert sync.threaded == 4  # the first sync shows it is slow; the others go to the thread

"""The journal's group commit: marks are on disk when `committed()` returns, never lost,
never out of order; one commit takes every mark queued since the last, and a commit that
fails keeps failing instead of letting a lane believe its mark is on disk."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from kzmail.errors import StateError
from kzmail.state.journal import DB_FILE, Journal
from tests.helpers.campaigns import status_on_disk
from tests.helpers.journals import open_watched

RUN = "commits"


async def lane(
    journal: Journal, state: Path, lane_no: int, count: int, seen: list[str | None]
) -> None:
    for i in range(count):
        address = f"l{lane_no}-{i}@x.test"
        journal.mark(RUN, address, "sending", durable=False)
        await journal.committed()
        seen.append(status_on_disk(state / DB_FILE, address) if i % 50 == 0 else "sending")
        for _ in range((i * 7 + lane_no) % 4):  # the "transaction": lanes drift apart
            await asyncio.sleep(0)
        journal.mark(RUN, address, "sent", durable=False)


def test_many_lanes_committing_at_once_see_their_marks_on_disk(tmp_path: Path) -> None:
    state = tmp_path / "state"
    seen: list[str | None] = []

    async def run() -> None:
        journal = Journal(state)  # in the thread that uses it, as SQLite wants
        await asyncio.gather(*(lane(journal, state, n, 1000, seen) for n in range(16)))
        journal.close()

    # in a thread, so that a loop spinning without yielding fails the test instead of
    # hanging it
    worker = threading.Thread(target=asyncio.run, args=(run(),), daemon=True)
    worker.start()
    worker.join(30)
    assert not worker.is_alive(), "committed() never returned"
    assert len(seen) == 16 * 1000
    assert set(seen) == {"sending"}  # each checked mark was on disk in time
    counts = Journal(state).counts(RUN)
    assert counts == {"sent": 16 * 1000}  # the later `sent` marks all landed, in order


def test_a_failing_commit_reaches_every_waiting_lane(tmp_path: Path) -> None:
    state = tmp_path / "state"
    journal = Journal(state)
    journal.mark(RUN, "a@x.test", "sending", durable=False)
    # a status the schema refuses: the commit fails in the writer thread
    journal.mark(RUN, "b@x.test", "nonsense", durable=False)

    async def run() -> list[BaseException | None]:
        results = await asyncio.gather(
            journal.committed(), journal.committed(), return_exceptions=True
        )
        return [r if isinstance(r, BaseException) else None for r in results]

    errors = asyncio.run(run())
    assert all(isinstance(e, StateError) and "CHECK constraint" in str(e) for e in errors), errors


def test_one_commit_takes_every_mark_queued_since_the_last(tmp_path: Path) -> None:
    """A lane that needs its mark on disk commits the other lanes' marks with it; they
    find theirs committed already, and nothing is lost either way."""
    journal, db = open_watched(tmp_path / "state")
    writes: list[str] = []
    db.set_trace_callback(  # count the statements it runs
        lambda sql: writes.append(sql) if sql.startswith("INSERT INTO marks") else None
    )

    async def run() -> None:
        for n in range(4):  # four lanes mark, one round trip apart
            journal.mark(RUN, f"l{n}@x.test", "sending", durable=False)
        await journal.committed()  # the first lane's message is due
        assert len(writes) == 1
        for _ in range(3):  # the others': nothing left to write
            await journal.committed()
        assert len(writes) == 1
        journal.mark(RUN, "late@x.test", "sending", durable=False)
        await journal.committed()
        assert len(writes) == 2

    asyncio.run(run())
    assert journal.counts(RUN) == {"sending": 5}
    journal.close()


def test_marks_a_failed_commit_did_not_write_stay_queued(tmp_path: Path) -> None:
    """After a failed commit, a later `committed()` must not return as if all were on disk."""
    journal, db = open_watched(tmp_path / "state")
    appends: list[str] = []
    db.set_trace_callback(
        lambda sql: appends.append(sql) if sql.startswith("INSERT INTO marks") else None
    )
    journal.mark(RUN, "a@x.test", "nonsense", durable=False)  # the schema refuses it

    async def run() -> list[BaseException | None]:
        results: list[BaseException | None] = []
        for _ in range(2):
            try:
                await journal.committed()
            except StateError as exc:
                results.append(exc)
            else:
                results.append(None)
        return results

    errors = asyncio.run(run())
    assert all(isinstance(e, StateError) for e in errors), errors
    with pytest.raises(StateError):  # closing tries the queued mark once more
        journal.close()
    # the one mark stayed queued, once: each commit (and the close) tried exactly that row
    assert [sql.count("'a@x.test'") for sql in appends] == [1, 1, 1]


def test_a_full_database_is_one_clear_error_and_the_journal_still_closes(tmp_path: Path) -> None:
    """Disk full mid-send (here: a database capped at its current size, SQLite's own
    "database or disk is full"): a StateError naming the file, also from `close`, which
    still closes the connection."""
    state = tmp_path / "state"
    journal, db = open_watched(state)
    (pages,) = db.execute("PRAGMA page_count").fetchone()
    db.execute(f"PRAGMA max_page_count={pages}")
    journal.mark(RUN, "a@x.test", "sending", detail="x" * 20_000, durable=False)

    with pytest.raises(StateError, match=r"state\.db: database or disk is full"):
        asyncio.run(journal.committed())
    with pytest.raises(StateError, match="database or disk is full"):
        journal.close()
    with pytest.raises(sqlite3.ProgrammingError):  # closed all the same
        db.execute("SELECT 1")


def test_a_fold_the_full_database_refuses_is_one_clear_error_too(tmp_path: Path) -> None:
    """The marks fit, the fold into `deliveries` does not (a look-up folds first)."""
    journal, db = open_watched(tmp_path / "state")
    for n in range(200):
        journal.mark(RUN, f"l{n}@x.test", "sending", detail="x" * 1000, durable=False)
    journal.flush()
    (pages,) = db.execute("PRAGMA page_count").fetchone()
    db.execute(f"PRAGMA max_page_count={pages}")

    with pytest.raises(StateError, match=r"state\.db: database or disk is full"):
        journal.counts(RUN)
    assert not db.in_transaction  # rolled back, not left open
    with pytest.raises(StateError, match="database or disk is full"):
        journal.close()

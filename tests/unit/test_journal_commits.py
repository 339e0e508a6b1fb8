"""The journal's group commit: marks are on disk when `committed()` returns, never lost,
never out of order, and many lanes waiting at once neither spin nor starve."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

from kzmail.journal import DB_FILE, GATHER_TURNS, Journal

RUN = "commits"


def on_disk(state: Path, address: str) -> str | None:
    """The status as a crash would leave it, read by a connection of our own: the latest
    mark in the log (folded into `deliveries` by the next Journal to open), else the row."""
    db = sqlite3.connect(state / DB_FILE)
    try:
        row = db.execute("SELECT status FROM marks WHERE campaign=? AND address=? "
                         "ORDER BY rowid DESC LIMIT 1", (RUN, address)).fetchone()
        row = row or db.execute("SELECT status FROM deliveries WHERE campaign=? AND address=?",
                                (RUN, address)).fetchone()
    finally:
        db.close()
    return None if row is None else str(row[0])


async def lane(journal: Journal, state: Path, lane_no: int, count: int,
               seen: list[str | None]) -> None:
    for i in range(count):
        address = f"l{lane_no}-{i}@x.test"
        journal.mark(RUN, address, "sending", durable=False)
        await journal.committed()
        seen.append(on_disk(state, address) if i % 50 == 0 else "sending")
        for _ in range((i * 7 + lane_no) % 4):       # the "transaction": lanes drift apart
            await asyncio.sleep(0)
        journal.mark(RUN, address, "sent", durable=False)


def test_many_lanes_committing_at_once_see_their_marks_on_disk(tmp_path: Path) -> None:
    state = tmp_path / "state"
    seen: list[str | None] = []

    async def run() -> None:
        journal = Journal(state)     # in the thread that uses it, as SQLite wants
        await asyncio.gather(*(lane(journal, state, n, 1000, seen) for n in range(16)))
        journal.close()

    # in a thread, so that a loop spinning without yielding fails the test instead of
    # hanging it
    worker = threading.Thread(target=asyncio.run, args=(run(),), daemon=True)
    worker.start()
    worker.join(30)
    assert not worker.is_alive(), "committed() never returned"
    assert len(seen) == 16 * 1000
    assert set(seen) == {"sending"}            # each checked mark was on disk in time
    counts = Journal(state).counts(RUN)
    assert counts == {"sent": 16 * 1000}         # the later `sent` marks all landed, in order


def test_a_failing_commit_reaches_every_waiting_lane(tmp_path: Path) -> None:
    state = tmp_path / "state"
    journal = Journal(state)
    journal.mark(RUN, "a@x.test", "sending", durable=False)
    # a status the schema refuses: the commit fails in the writer thread
    journal.mark(RUN, "b@x.test", "nonsense", durable=False)

    async def run() -> list[BaseException | None]:
        results = await asyncio.gather(journal.committed(), journal.committed(),
                                       return_exceptions=True)
        return [r if isinstance(r, BaseException) else None for r in results]

    errors = asyncio.run(run())
    assert all(isinstance(e, sqlite3.IntegrityError) for e in errors), errors


def test_lanes_that_ask_within_a_few_turns_share_one_commit(tmp_path: Path) -> None:
    """Group commit waits `GATHER_TURNS` turns of the loop: lanes woken a turn or two
    apart (as replies from the relay wake them) still share a commit; a lane that asks
    after it gets one of its own, and nothing is lost either way."""
    journal = Journal(tmp_path / "state")
    writes: list[str] = []
    journal._db.set_trace_callback(        # count the statements it runs
        lambda sql: writes.append(sql) if sql.startswith("INSERT INTO marks") else None)

    async def one(address: str, turns: int) -> None:
        for _ in range(turns):
            await asyncio.sleep(0)
        journal.mark(RUN, address, "sending", durable=False)
        await journal.committed()

    async def run() -> None:
        await asyncio.gather(*(one(f"l{n}@x.test", n) for n in range(GATHER_TURNS - 2)))
        assert len(writes) == 1
        await one("late@x.test", 0)
        assert len(writes) == 2

    asyncio.run(run())
    assert journal.counts(RUN) == {"sending": GATHER_TURNS - 1}
    journal.close()


def test_a_lane_cancelled_while_waiting_leaves_the_others_their_commit(tmp_path: Path) -> None:
    state = tmp_path / "state"
    journal = Journal(state)

    async def run() -> list[object]:
        for address in ("a@x.test", "b@x.test", "c@x.test"):
            journal.mark(RUN, address, "sending", durable=False)
        lanes = [asyncio.ensure_future(journal.committed()) for _ in range(3)]
        await asyncio.sleep(0)                 # all three are waiting now
        lanes[1].cancel()                      # e.g. that lane's task is being torn down
        return await asyncio.gather(*lanes, return_exceptions=True)

    results = asyncio.run(run())
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], asyncio.CancelledError)
    assert [on_disk(state, a) for a in ("a@x.test", "b@x.test", "c@x.test")] == ["sending"] * 3
    journal.close()

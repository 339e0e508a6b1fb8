"""The state database (SQLite, WAL) in the state folder: deliveries and suppressions.

`deliveries` records, per campaign run and recipient, whether a message was sent, so a
second `kzmail send` never mails anyone twice: a row is `sending` (committed) before the
message goes out and `sent` only after the relay's 250 for DATA, so a row still `sending`
when a run starts was caught by a crash and becomes `uncertain`.
Marks are queued and appended to the `marks` log in one statement per commit;
`committed()` commits them when a lane needs its own on disk, and that one commit takes
every mark the other lanes queued since the last (group commit). The log is folded
into `deliveries` every `MERGE_EVERY` marks, sorted by key, in one transaction, and before
anything reads `deliveries` (in this process, or when another one opens the database;
after a crash that replays it). Appending touches one page per commit where an upsert at
a random place in a big table touches one per row (see
docs/decisions/0001-journal-append-only-marks-log.md).
`rate_stamps` remembers when recent transactions ended, per relay, so a restart inside
the hour does not reset the hour. `suppressions` holds addresses that must never be
mailed again (unsubscribed from a list, or bounced for good: list `*`), until the
organiser removes one (`unsuppress`), which `unsuppressions` records with the reason.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from kzmail.errors import StateError
from kzmail.models import ANY_LIST
from kzmail.private import private_folder, private_umask
from kzmail.state.durable import WalSync
from kzmail.state.inboxlog import InboxStore, migrate_status
from kzmail.state.schema import (
    ADDED_COLUMNS,
    APPEND,
    MERGE,
    ROW,
    SCHEMA,
    SELECT_DELIVERIES,
)
from kzmail.state.sqlerrors import mapped, unmapped
from kzmail.state.suppressed import SuppressedCopy
from kzmail.state.suppressions import SuppressionStore
from kzmail.state.walcheckpoint import Checkpointer

DB_FILE = "state.db"
MERGE_EVERY = 20_000  # marks appended before the log is folded into `deliveries`


@dataclass(frozen=True, slots=True)
class Delivery:
    """One journal row, for reports."""

    address: str
    name: str
    status: str
    attempts: int
    code: int | None
    detail: str
    message_id: str
    updated_at: float
    retryable: bool


@mapped
class Journal(SuppressionStore, InboxStore):
    """One connection to the state database; every write is committed at once.

    Every public method raises `StateError` (never `sqlite3.Error`) when the database fails.
    """

    def __init__(self, state_dir: Path, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock  # when marks and suppressions happen
        self._path = state_dir / DB_FILE
        self._unmerged = 0  # rows this connection put in `marks`
        self._unfolded: set[tuple[str, str]] = set()  # (run, address) marked since a fold
        self._data_version = -1  # see `_changed_elsewhere`
        try:
            private_folder(state_dir)  # 0700, its files 0600 (an older kzmail's too)
            with private_umask():  # SQLite creates state.db, -wal and -shm here
                self._db = sqlite3.connect(self._path, isolation_level=None)
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                # checkpoints (the only fsyncs in WAL mode) run in a thread of their own
                # while we write; this is only the safety net if that thread falls behind
                self._db.execute("PRAGMA wal_autocheckpoint=20000")
                self._db.executescript(SCHEMA)
                self._migrate()
                self._merge()  # marks left by a crash, or by another process
            private_folder(state_dir)
        except (OSError, sqlite3.Error) as exc:
            raise StateError(f"cannot open the state database in {state_dir}: {exc}") from exc
        self._checkpointer: Checkpointer | None = None
        self._wal_sync = WalSync(self._path)
        self._lazy: list[tuple[object, ...]] = []
        self._marked = 0  # marks made so far
        self._written = 0  # marks committed so far
        self._appends: dict[int, str] = {}  # statement text by number of rows
        self._suppressed = SuppressedCopy(self._db, ANY_LIST)

    def _migrate(self) -> None:
        """Add the columns a state database made by an older kzmail lacks."""
        have = {str(row[1]) for row in self._db.execute("PRAGMA table_info(deliveries)")}
        for column, kind in ADDED_COLUMNS:
            if column not in have:
                self._db.execute(f"ALTER TABLE deliveries ADD COLUMN {column} {kind}")
        migrate_status(self._db)

    def close(self) -> None:
        """Write and fold what is queued, then close (the connection in any case)."""
        try:
            self._settle()
        finally:
            if self._checkpointer is not None:
                self._checkpointer.stop()
            self._wal_sync.close()
            self._db.close()

    # deliveries ---------------------------------------------------------------
    def status(self, campaign: str, address: str) -> str | None:
        """The delivery's status, with every committed mark folded in first, but only when
        there can be one for it: this connection marked the address since the last fold,
        or another connection has written since (SQLite's `data_version`).

        A resumed run looks up each subscriber before mailing them, i.e. addresses it has
        not marked yet: those look-ups need no fold (one write transaction each, otherwise).
        """
        address = address.lower()
        self._settle_for(campaign, address)
        row = self._db.execute(
            "SELECT status FROM deliveries WHERE campaign=? AND address=?", (campaign, address)
        ).fetchone()
        return None if row is None else str(row[0])

    def _settle_for(self, campaign: str, address: str) -> None:
        """Fold the log first if it may hold a mark for this (lower-cased) address."""
        if (campaign, address) in self._unfolded or self._changed_elsewhere():
            self._settle()

    def _changed_elsewhere(self) -> bool:
        """True (once) when another connection has committed since the last time asked."""
        (version,) = self._db.execute("PRAGMA data_version").fetchone()
        if version == self._data_version:
            return False
        self._data_version = version
        return True

    def retryable(self, campaign: str, address: str) -> bool:
        """True for a delivery that failed for a transient reason (`kzmail retry`)."""
        address = address.lower()
        self._settle_for(campaign, address)
        row = self._db.execute(
            "SELECT 1 FROM deliveries WHERE campaign=? AND address=? "
            "AND status='failed' AND retryable=1",
            (campaign, address),
        ).fetchone()
        return row is not None

    @unmapped  # its only database call is `flush`, which is mapped
    def mark(
        self,
        campaign: str,
        address: str,
        status: str,
        *,
        code: int | None = None,
        detail: str | None = None,
        message_id: str | None = None,
        name: str | None = None,
        retryable: bool = False,
        durable: bool = True,
    ) -> None:
        """Record the new status of one delivery, committed before returning.

        With `durable=False` the write waits for the next commit (`committed`, `flush` or a
        durable mark) and goes to the database in the same statement as the others: the
        sender marks `sending` so and awaits `committed()` before the message goes out, and
        `sent` so without waiting (a crash before that commit leaves the row `sending`,
        hence `uncertain`: never re-sent, so safe).
        """
        now = self._clock()
        address = address.lower()
        row = (
            campaign,
            address,
            status,
            1 if status == "sending" else 0,
            code,
            detail,
            message_id,
            now,
            name,
            int(retryable),
            now,
            now if status == "sent" else None,
        )
        self._lazy.append(row)
        self._unfolded.add((campaign, address))
        self._marked += 1
        if durable:
            self.flush()
        if self._checkpointer is None:
            self._checkpointer = Checkpointer(self._path)

    def flush(self) -> None:
        """Append (and commit) every queued mark to the log, in one statement.

        Marks a failed commit did not write stay queued: every later commit fails too, so
        no lane can go on as if its `sending` were on disk. A database that cannot take
        them (disk full, say) is a `StateError`: one line, not a traceback.
        """
        if self._lazy:
            rows, self._lazy = self._lazy, []
            sql = self._appends.get(len(rows))
            if sql is None:
                sql = self._appends[len(rows)] = APPEND + ",".join([ROW] * len(rows))
            try:
                self._db.execute(sql, [value for row in rows for value in row])
            except BaseException as exc:
                self._lazy[:0] = rows
                if isinstance(exc, sqlite3.Error):
                    raise self._cannot_record(exc) from exc
                raise
            self._written = self._marked
            self._wal_sync.wrote()
            self._unmerged += len(rows)
            if self._unmerged >= MERGE_EVERY:
                self._merge()

    def _merge(self) -> None:
        """Fold the marks log into `deliveries` and empty it, in one transaction."""
        if self._db.execute("SELECT 1 FROM marks LIMIT 1").fetchone() is None:
            return
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(MERGE)
                self._db.execute("DELETE FROM marks")
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:  # SQLite may have rolled back already
                    self._db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise self._cannot_record(exc) from exc
        self._unmerged = 0
        self._unfolded.clear()

    def _cannot_record(self, exc: sqlite3.Error) -> StateError:
        """A write of marks or a fold the database refused (disk full, say): one line."""
        return StateError(f"cannot record deliveries in {self._path}: {exc}")

    def _settle(self) -> None:
        """Make `deliveries` current: every queued mark written and the log folded in."""
        self.flush()
        self._merge()

    @unmapped  # its only database call is `flush`, which is mapped
    async def committed(self) -> None:
        """Return once every mark made so far is committed (one statement) and on stable
        storage (an fdatasync of the WAL, grouped: `state.durable`).

        The sender awaits this just before a message goes out, one round trip to the relay
        after it marked `sending`, so the commit takes every mark the other lanes queued
        meanwhile (group commit). It first lets the loop run once: lanes whose replies came
        in together then share it, which leaves CPU to the signing process (see
        docs/decisions/0002-commit-the-sending-mark-after-354.md).
        """
        if self._written < self._marked:
            await asyncio.sleep(0)
            if self._written < self._marked:
                self.flush()
        await self._wal_sync.covering(self._wal_sync.written)

    def has_deliveries(self, campaign: str) -> bool:
        """False for a run never started (the sender then skips per-address look-ups)."""
        self._settle()
        row = self._db.execute(
            "SELECT 1 FROM deliveries WHERE campaign=? LIMIT 1", (campaign,)
        ).fetchone()
        return row is not None

    def settle_interrupted(self, campaign: str) -> list[Delivery]:
        """Rows left `sending` by a crash become `uncertain`; return them."""
        self._settle()
        self._db.execute(
            "UPDATE deliveries SET status='uncertain', updated_at=? "
            "WHERE campaign=? AND status='sending'",
            (self._clock(), campaign),
        )
        return list(self.deliveries(campaign, ("uncertain",)))

    def deliveries(self, campaign: str, statuses: tuple[str, ...]) -> Iterator[Delivery]:
        """Every delivery of the run in one of `statuses`, in the order they were first tried."""
        self._settle()
        marks = ",".join("?" * len(statuses))  # placeholders only, values are bound
        query = SELECT_DELIVERIES.replace("(?)", f"({marks})")
        rows = self._db.execute(query, (campaign, *statuses))
        for row in rows:
            yield Delivery(
                str(row[0]),
                row[1] or "",
                str(row[2]),
                int(row[3]),
                row[4],
                row[5] or "",
                row[6] or "",
                float(row[7]),
                bool(row[8]),
            )

    def forget(self, campaign: str) -> None:
        """Drop every delivery record of a campaign run (used for sink rehearsals)."""
        self._settle()
        self._db.execute("DELETE FROM deliveries WHERE campaign=?", (campaign,))

    # rate stamps --------------------------------------------------------------
    def rate_history(self, scope: str, span: float) -> list[float]:
        """Ends (wall clock) of the transactions of the last `span` seconds; older are dropped."""
        since = self._clock() - span
        self._db.execute("DELETE FROM rate_stamps WHERE scope=? AND at<?", (scope, since))
        rows = self._db.execute("SELECT at FROM rate_stamps WHERE scope=? ORDER BY at", (scope,))
        return [float(at) for (at,) in rows]

    def add_rate_stamp(self, scope: str, at: float) -> None:
        self._db.execute("INSERT INTO rate_stamps VALUES (?, ?)", (scope, at))

    def counts(self, campaign: str) -> dict[str, int]:
        self._settle()
        rows = self._db.execute(
            "SELECT status, COUNT(*) FROM deliveries WHERE campaign=? GROUP BY status", (campaign,)
        )
        return {str(status): int(count) for status, count in rows}

"""Make what the journal committed durable: an fdatasync of its WAL file, grouped.

SQLite runs the journal in WAL mode with `synchronous=NORMAL`, which writes each commit to
`state.db-wal` but does not sync it: a process kill keeps it (the kernel has the pages), a
power cut may not. `WalSync.covering(generation)` returns once an fdatasync that started
after commit number `generation` has finished, so a lane can hold back a message's final dot
until the `sending` mark naming its recipient is on stable storage. One sync covers every
commit made before it started (group commit): lanes whose commits landed while a sync was
running share the next one. A disk that syncs quickly is synced on the loop's own thread,
a slow one in a thread of its own (the loop keeps building and sending meanwhile): handing
a sync to a thread and its result back to the loop costs more CPU than a quick sync blocks
the loop (docs/decisions/0011-journal-sync-inline-or-threaded.md). `now()` always syncs at
once, blocking, for rare writes (suppressions).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from kzmail.errors import StateError

INLINE_BELOW = 0.001  # a sync that takes less blocks the loop for less than a hand-off costs


class WalSync:
    """The durable counterpart of one journal connection's commits (see the module)."""

    def __init__(
        self,
        database: Path,
        *,
        inline_below: float = INLINE_BELOW,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._wal = database.with_name(database.name + "-wal")
        self._inline_below = inline_below  # seconds a sync may block the loop
        self._timer = timer
        self._took = 0.0  # how long syncs take (a moving average, seconds)
        self.threaded = 0  # syncs handed to the thread (for tests and benchmarks)
        self._fd: int | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._running: asyncio.Future[None] | None = None  # the sync in progress
        self._written = 0  # commits made (numbered by `wrote`)
        self._durable = 0  # commits known to be on stable storage

    def wrote(self) -> int:
        """Count one more commit; its number, for `covering`."""
        self._written += 1
        return self._written

    @property
    def written(self) -> int:
        return self._written

    async def covering(self, generation: int) -> None:
        """Return once commit `generation` (and every one before it) is on stable storage."""
        while self._durable < generation:
            if self._running is None:
                if self._took < self._inline_below:
                    self.now()  # quick: cheaper on this thread than handed to another
                    return
                self._start()
            assert self._running is not None
            try:
                await asyncio.shield(self._running)
            except OSError as exc:
                raise StateError(f"cannot make the journal durable ({self._wal}): {exc}") from exc

    def _start(self) -> None:
        upto = self._written
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kzmail-fsync")
        pool, loop = self._pool, asyncio.get_running_loop()

        async def sync() -> None:
            # the bookkeeping happens inside the task, so a waiter that finds it done
            # also finds `_durable` up to date (a done callback might not have run yet)
            try:
                self.threaded += 1
                await loop.run_in_executor(pool, self._sync)
                self._durable = max(self._durable, upto)
            finally:
                self._running = None

        self._running = asyncio.ensure_future(sync())

    def now(self) -> None:
        """Sync at once, blocking (for writes too rare to batch)."""
        upto = self._written
        try:
            self._sync()
        except OSError as exc:
            raise StateError(f"cannot make the journal durable ({self._wal}): {exc}") from exc
        self._durable = max(self._durable, upto)

    def _sync(self) -> None:
        if self._fd is None:
            self._fd = os.open(self._wal, os.O_RDONLY | os.O_CLOEXEC)
            folder = os.open(self._wal.parent, os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.fsync(folder)  # the WAL's name in its folder survives too
            finally:
                os.close(folder)
        start = self._timer()
        os.fdatasync(self._fd)
        self._took = 0.75 * self._took + 0.25 * (self._timer() - start)

    def close(self) -> None:
        """Stop the sync thread and let go of the file."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

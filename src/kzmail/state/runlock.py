"""One `kzmail send` per campaign run at a time: a lock file in the state folder.

Two sends of the same run at once (a second terminal, a cron job) would each find a
subscriber not yet `sent` and mail them both; and the second one's start would turn the
first one's in-flight rows `uncertain`. So a send holds an exclusive `flock` on a file
named after its run for as long as it runs, and a second send stops with a clear message
before it touches the journal or the relay. The kernel drops the lock when the process
ends, however it ends (kill -9 included), so a crash never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kzmail.errors import StateError
from kzmail.private import private_folder


def lock_path(state_dir: Path, run: str) -> Path:
    """The lock file of one run (its name is a hash: run names may hold any character)."""
    return state_dir / f"send-{hashlib.sha256(run.encode()).hexdigest()[:16]}.lock"


@contextmanager
def run_lock(state_dir: Path, run: str) -> Iterator[None]:
    """Hold the run's lock, or raise `StateError` naming the process that holds it."""
    path = lock_path(state_dir, run)
    try:
        private_folder(state_dir)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StateError(f"cannot create the lock file {path}: {exc}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            raise StateError(
                f"{run!r} is being sent right now by another kzmail (process {holder}); "
                "wait for it to finish, or stop it, then run this again"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        yield
    finally:
        os.close(fd)  # closing the file releases the lock


def running(state_dir: Path, run: str) -> int | None:
    """The process id of the send that holds the run's lock now, or None if none does.

    Only looks: the lock is tried shared and let go at once, and a missing lock file
    (no send ever) is not created.
    """
    try:
        fd = os.open(lock_path(state_dir, run), os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            return int(holder) if holder.isdigit() else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)

"""Files and folders only their owner may read: the state folder and what names subscribers.

The state folder holds every address, name and relay reply, and the files kzmail writes
(reports, cleaned lists, exports, previews) name subscribers too; on a shared machine the
default umask would leave all of them readable by every local user.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

FOLDER_MODE = 0o700
FILE_MODE = 0o600


@contextmanager
def private_umask() -> Iterator[None]:
    """Files created meanwhile (SQLite's `-wal`/`-shm` too) are for the owner only."""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def private_folder(folder: Path) -> None:
    """Create `folder` 0700 (or tighten it), and tighten every file directly in it to 0600."""
    folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    if stat.S_IMODE(folder.stat().st_mode) & 0o077:
        folder.chmod(FOLDER_MODE)
    with os.scandir(folder) as entries:
        for entry in entries:
            if (
                entry.is_file(follow_symlinks=False)
                and stat.S_IMODE(entry.stat(follow_symlinks=False).st_mode) & 0o077
            ):
                os.chmod(entry.path, FILE_MODE)


def open_private(path: Path, mode: str = "w", **options: Any) -> IO[Any]:
    """`open(path, mode)` for writing, the file 0600 (an existing one is tightened)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        return os.fdopen(fd, mode, **options)
    except BaseException:
        os.close(fd)
        raise


__all__ = ["open_private", "private_folder", "private_umask"]

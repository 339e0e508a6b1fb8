"""Which state folder a campaign belongs to: the nearest `.kzmail/`, as git finds `.git`.

The state (who was sent, who unsubscribed, the secret) belongs to the campaign's project, not
to the shell's current folder: `locate` looks in the campaign's folder and every parent for
`.kzmail/`; if there is none, the project's root is the folder that holds `campaigns/` (or the
campaign's own folder), and the state folder will be made there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

STATE_FOLDER = ".kzmail"


@dataclass(frozen=True)
class Located:
    """A project's state folder and root (both absolute), and whether the folder exists."""

    state: Path
    root: Path
    exists: bool


def locate(start: Path) -> Located:
    """The state folder of the project that `start` (an absolute path: a campaign file or a
    folder) is in."""
    if not start.is_absolute():
        raise ValueError(f"locate needs an absolute path, not {start}")
    folder = start if start.is_dir() else start.parent
    for candidate in (folder, *folder.parents):
        if (candidate / STATE_FOLDER).is_dir():
            return Located(candidate / STATE_FOLDER, candidate, True)
    root = folder.parent if folder.name == "campaigns" else folder
    return Located(root / STATE_FOLDER, root, False)

"""The state folder and the files that name subscribers are for their owner only."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kzmail.cli.main import cli

CAMPAIGN = "campaigns/kasachstan.yaml"


@pytest.fixture(autouse=True)
def _shared_umask() -> Iterator[None]:
    """The usual desktop umask, under which files are readable by everyone by default."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def kz(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def state_modes(state: Path) -> dict[str, int]:
    return {entry.name: mode(entry) for entry in state.iterdir()}


def test_state_folder_is_0700_and_every_file_in_it_0600(project: Path) -> None:
    code, output = kz("send", CAMPAIGN)
    assert code == 0, output
    state = project / ".kzmail"
    assert mode(state) == 0o700
    db = sqlite3.connect(state / "state.db")  # keep -wal and -shm in place
    try:
        db.execute("SELECT 1 FROM deliveries").fetchone()
        modes = state_modes(state)
        assert {"state.db", "state.db-wal", "state.db-shm", "secret.key"} <= set(modes), modes
        assert all(m == 0o600 for m in modes.values()), modes
    finally:
        db.close()


def test_an_older_open_state_folder_is_tightened_on_open(project: Path) -> None:
    state = project / ".kzmail"
    state.mkdir(mode=0o755)
    sqlite3.connect(state / "state.db").close()  # an older kzmail's database, 0644
    os.chmod(state / "state.db", 0o644)
    os.chmod(state, 0o755)
    code, output = kz("status", CAMPAIGN)
    assert code == 0, output
    assert mode(state) == 0o700
    assert all(m == 0o600 for m in state_modes(state).values()), state_modes(state)


def test_files_that_name_subscribers_are_0600(project: Path) -> None:
    assert kz("send", CAMPAIGN)[0] == 0
    (project / "old.csv").write_text("stale\n", encoding="utf-8")
    os.chmod(project / "old.csv", 0o644)  # an existing file is tightened too
    commands = [
        ("report", CAMPAIGN, "--out", "old.csv"),
        ("clean", "subscribers.example.csv", "--out", "clean.csv"),
        ("clean", "subscribers.example.csv", "--out", "clean.xlsx"),
        ("unsubscribes", "export", "--out", "export.csv"),
        ("preview", CAMPAIGN, "--out", "preview"),
    ]
    for command in commands:
        code, output = kz(*command)
        assert code == 0, (command, output)
    written = [project / name for name in ("old.csv", "clean.csv", "clean.xlsx", "export.csv")]
    written += sorted((project / "preview").iterdir())
    assert len(written) == 7
    assert {path.name: mode(path) for path in written} == {path.name: 0o600 for path in written}

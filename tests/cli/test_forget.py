"""`kzmail forget`: no trace of the person in the state files, and never mailed again."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from kzmail.cli.main import cli

CAMPAIGN = "campaigns/kasachstan.yaml"
ADDRESS = "ayse.yilmaz@example.net"


def kz(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def outbox_recipients(project: Path) -> list[str]:
    files = (project / "outbox" / "kasachstan" / "new").iterdir()
    return [
        line.split(b":", 1)[1].strip().decode()
        for f in files
        for line in f.read_bytes().splitlines()[:2]
        if line.startswith(b"Delivered-To:")
    ]


def test_forget_erases_the_address_but_keeps_it_suppressed(project: Path) -> None:
    assert kz("send", CAMPAIGN)[0] == 0
    assert ADDRESS in outbox_recipients(project)
    (project / "gone.txt").write_text(ADDRESS + "\n", encoding="utf-8")
    code, output = kz("unsubscribes", "import", "gone.txt")
    assert code == 0, output
    code, output = kz("forget", ADDRESS.upper(), "--yes")
    assert code == 0, output
    assert "Still suppressed" in output
    state = project / ".kzmail"
    needle = ADDRESS.encode()
    for path in state.iterdir():
        data = path.read_bytes()
        assert needle not in data and "Yılmaz".encode() not in data, path.name
    code, output = kz("send", CAMPAIGN)
    assert code == 0, output
    recipients = outbox_recipients(project)
    assert len(recipients) == 11 and ADDRESS not in recipients
    code, output = kz("check", CAMPAIGN)
    assert "1 suppressed" in output.replace("\n", " ")
    db = sqlite3.connect(state / "state.db")
    try:
        assert db.execute(
            "SELECT COUNT(*) FROM deliveries WHERE address=?", (ADDRESS,)
        ).fetchone() == (0,)
    finally:
        db.close()


def test_forget_asks_first_and_refuses_a_non_address(project: Path) -> None:
    result = CliRunner().invoke(cli, ["forget", ADDRESS], input="n\n")
    assert result.exit_code == 1
    code, output = kz("forget", "not an address", "--yes")
    assert code == 2 and "Traceback" not in output and "error" in output


def test_forget_while_another_process_writes_is_one_line(project: Path) -> None:
    assert kz("send", CAMPAIGN)[0] == 0
    other = sqlite3.connect(project / ".kzmail" / "state.db", timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # a send holding the write lock, say
        result = CliRunner().invoke(cli, ["forget", ADDRESS, "--yes"])
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "state.db" in result.output
    assert "Traceback" not in result.output


def test_forget_erases_the_record_of_a_removed_suppression(project: Path) -> None:
    (project / "gone.txt").write_text(ADDRESS + "\n", encoding="utf-8")
    assert kz("unsubscribes", "import", "gone.txt")[0] == 0
    code, output = kz("unsubscribes", "remove", ADDRESS, "--yes", "--reason", f"{ADDRESS} asked")
    assert code == 0, output
    state = project / ".kzmail"
    assert any(ADDRESS.encode() in p.read_bytes() for p in state.iterdir())  # the record
    code, output = kz("forget", ADDRESS, "--yes")
    assert code == 0, output
    for path in (project / ".kzmail").iterdir():
        assert ADDRESS.encode() not in path.read_bytes(), path.name


def test_forget_erases_the_soft_bounces_counted_for_the_address(project: Path) -> None:
    from kzmail.state.journal import Journal

    journal = Journal(project / ".kzmail")
    try:
        journal.count_soft(ADDRESS, "kasachstan", "4.2.2", "mailbox full")
    finally:
        journal.close()
    code, output = kz("forget", ADDRESS, "--yes")
    assert code == 0, output
    for name in ("state.db", "state.db-wal"):
        path = project / ".kzmail" / name
        assert not path.exists() or ADDRESS.encode() not in path.read_bytes(), name

"""`kzmail unsubscribes import|list|export`: mailto replies in, a CSV for the spreadsheet out."""

from __future__ import annotations

import csv
import io
import mailbox
import sqlite3
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kzmail.cli.common import current_workspace
from kzmail.cli.main import cli
from kzmail.state.journal import Journal

LIST = "kasachstan.newsletter.arbeiterinnenmacht.example.org"


def _mail(sender: str, subject: str = "unsubscribe", extra: str = "") -> bytes:
    head = f"From: {sender}\r\n" if sender else ""
    return (
        f"{head}To: abmelden@arbeiterinnenmacht.example.org\r\nSubject: {subject}\r\n"
        f"{extra}Message-ID: <{abs(hash(sender + extra))}@x>\r\n\r\nBitte abmelden.\r\n"
    ).encode()


REPLIES = [
    _mail('"Jürgen Müller" <Juergen.Mueller@example.org>'),
    _mail("ayse.yilmaz@example.net", "Re: Solidarität"),
    _mail("anna.mueller@example.com", extra="Auto-Submitted: auto-replied\r\n"),
    _mail("MAILER-DAEMON@mx.example.net", "Undelivered Mail"),
    _mail("Juergen.Mueller@example.org", "nochmal"),
    _mail(""),
    _mail("x@example.org", extra="Precedence: bulk\r\n"),
]


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def rows_of_anna() -> list[str]:
    journal = Journal(current_workspace().state)
    try:
        return [lid for lid, address, _, _ in journal.suppressions() if address.startswith("anna")]
    finally:
        journal.close()


def suppressed() -> dict[str, str]:
    journal = Journal(current_workspace().state)
    try:
        return {address: list_id for list_id, address, _, _ in journal.suppressions()}
    finally:
        journal.close()


def test_import_mbox_suppresses_people_not_robots(project: Path) -> None:
    box = mailbox.mbox(project / "replies.mbox")
    for data in REPLIES:
        box.add(data)
    box.close()
    code, output = run("unsubscribes", "import", "replies.mbox", "--trust-from")
    assert code == 0, output
    assert suppressed() == {"juergen.mueller@example.org": LIST, "ayse.yilmaz@example.net": LIST}
    # read as `kzmail inbox` reads it (an alias since issue 17): robots are sorted, not
    # skipped, and the MAILER-DAEMON message is a bounce (one naming nobody here)
    assert "suppressed juergen.mueller@example.org" in output
    assert "suppressed ayse.yilmaz@example.net" in output
    assert "7 messages (1 bounce, 2 auto-reply, 4 unsubscribe)" in output
    assert "replies.mbox message 4: a bounce naming no recipient" in output
    assert "replies.mbox message 6: skipped: no single From address" in output
    # every later send honours it
    code, output = run("send", "campaigns/kasachstan.yaml", "--dry-run")
    assert code == 0, output
    assert "2 suppressed" in output
    assert "built 10 messages" in output
    # importing again changes nothing
    code, output = run("unsubscribes", "import", "replies.mbox", "--trust-from")
    assert "0 suppressed" in output
    assert "7 handled before" in output


def test_import_maildir(project: Path) -> None:
    box = mailbox.Maildir(project / "Abmeldungen", create=True)
    for data in REPLIES[:3]:
        box.add(data)
    code, output = run(
        "unsubscribes", "import", "Abmeldungen", "--list", "other.example.org", "--trust-from"
    )
    assert code == 0, output
    assert suppressed() == {
        "juergen.mueller@example.org": "other.example.org",
        "ayse.yilmaz@example.net": "other.example.org",
    }


def test_import_plain_list_and_csv(project: Path) -> None:
    (project / "weg.txt").write_text(
        "# from the info stand\nanna.mueller@example.com\n\nnot an address\n"
        "Aigerim <aigerim.nurpeisova@example.org>\n",
        encoding="utf-8",
    )
    code, output = run("unsubscribes", "import", "weg.txt")
    assert code == 0, output
    assert "weg.txt:4: invalid address 'not an address'" in output
    (project / "weg.csv").write_text(
        "Name;E-Mail\nX;juergen.mueller@example.org\n", encoding="utf-8"
    )
    code, output = run("unsubscribes", "import", "weg.csv", "--list", "*")
    assert code == 0, output
    assert suppressed() == {
        "anna.mueller@example.com": LIST,
        "aigerim.nurpeisova@example.org": LIST,
        "juergen.mueller@example.org": "*",
    }
    code, output = run("send", "campaigns/kasachstan.yaml", "--dry-run")
    assert "3 suppressed" in output


def test_list_and_export_csv(project: Path) -> None:
    (project / "weg.txt").write_text("anna.mueller@example.com\n", encoding="utf-8")
    run("unsubscribes", "import", "weg.txt")
    run("unsubscribes", "import", "weg.txt", "--list", "other.example.org")
    code, output = run("unsubscribes", "list")
    assert code == 0, output
    assert output.count("anna.mueller@example.com") == 2
    assert "2 unsubscribed." in output
    code, output = run("unsubscribes", "export")
    assert code == 0, output
    records = list(csv.DictReader(io.StringIO(output)))
    assert [r["list_id"] for r in records] == [LIST, "other.example.org"]
    assert records[0]["email"] == "anna.mueller@example.com"
    assert records[0]["reason"] == "unsubscribe: imported from weg.txt"
    stamp = datetime.fromisoformat(records[0]["unsubscribed_at"])
    assert stamp.utcoffset() is not None
    assert abs((datetime.now(stamp.tzinfo) - stamp).total_seconds()) < 120
    code, output = run("unsubscribes", "export", "--out", "weg-export.csv", "--list", LIST)
    assert code == 0, output
    text = (project / "weg-export.csv").read_text(encoding="utf-8")
    assert text.splitlines()[0] == "email,list_id,reason,unsubscribed_at"
    assert len(text.splitlines()) == 2


def test_import_errors_are_one_line(project: Path) -> None:
    code, output = run("unsubscribes", "import", "missing.mbox")
    assert code == 2
    assert "missing.mbox: file not found" in output
    (project / "folder").mkdir()
    code, output = run("unsubscribes", "import", "folder")
    assert code == 2
    assert "Maildir" in output
    assert "Traceback" not in output


def test_export_writes_formula_looking_cells_as_text(project: Path) -> None:
    journal = Journal(project / ".kzmail")
    journal.suppress("=evil.list", "-x@example.org", '\t=HYPERLINK("http://x")')
    journal.close()
    for args in (("unsubscribes", "export"), ("unsubscribes", "export", "--out", "x.csv")):
        code, output = run(*args)
        assert code == 0, output
        text = output if len(args) == 2 else (project / "x.csv").read_text(encoding="utf-8")
        record = next(csv.DictReader(io.StringIO(text)))
        assert (record["email"], record["list_id"], record["reason"]) == (
            "-x@example.org",
            "'=evil.list",
            '\'\t=HYPERLINK("http://x")',
        )


def test_export_then_import_restores_every_row(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = Journal(project / ".kzmail", clock=lambda: 1_700_000_000.0)
    journal.suppress(LIST, "anna.mueller@example.com", "unsubscribe: one-click")
    journal.close()
    journal = Journal(project / ".kzmail", clock=lambda: 1_700_086_400.0)
    journal.suppress("*", "x@example.org", "bounce: 550 5.1.1 no such user")
    journal.suppress("other.example.org", "anna.mueller@example.com", "=odd reason")
    journal.close()
    code, output = run("unsubscribes", "export", "--out", "backup.csv")
    assert code == 0, output
    before = (project / "backup.csv").read_text(encoding="utf-8")
    monkeypatch.setenv("KZMAIL_STATE_DIR", str(project / "fresh-state"))
    code, output = run("unsubscribes", "import", "backup.csv")
    assert code == 0, output
    assert "3 newly unsubscribed" in output
    assert "0 skipped" in output
    code, output = run("unsubscribes", "export", "--out", "again.csv")
    assert code == 0, output
    assert (project / "again.csv").read_text(encoding="utf-8") == before
    journal = Journal(project / "fresh-state")
    try:
        assert journal.is_suppressed("any.list.example.org", "x@example.org")
        assert journal.suppressions()[0] == (
            LIST,
            "anna.mueller@example.com",
            "unsubscribe: one-click",
            1_700_000_000.0,
        )
    finally:
        journal.close()
    code, output = run("unsubscribes", "import", "backup.csv")
    output = " ".join(output.split())
    assert "0 newly unsubscribed" in output and "3 already were" in output


def test_import_csv_with_a_marker_column_suppresses_marked_rows(project: Path) -> None:
    (project / "liste.csv").write_text(
        "E-Mail;Abgemeldet\nanna.mueller@example.com;ja\n", encoding="utf-8"
    )
    code, output = run("unsubscribes", "import", "liste.csv")
    assert code == 0, output
    assert suppressed() == {"anna.mueller@example.com": LIST}


def test_remove_undoes_a_suppression_and_records_why(project: Path) -> None:
    (project / "weg.txt").write_text("anna.mueller@example.com\n", encoding="utf-8")
    run("unsubscribes", "import", "weg.txt")
    run("unsubscribes", "import", "weg.txt", "--list", "*")
    code, output = run("send", "campaigns/kasachstan.yaml", "--dry-run")
    assert "1 suppressed" in output
    asked = CliRunner().invoke(
        cli, ["unsubscribes", "remove", "Anna.Mueller@example.com", "--list", LIST], input="n\n"
    )
    assert asked.exit_code == 1
    assert f"anna.mueller@example.com on {LIST}" in asked.output  # the question
    assert "Nothing removed." in asked.output
    assert sorted(rows_of_anna()) == ["*", LIST]
    code, output = run(
        "unsubscribes", "remove", "anna.mueller@example.com", "--list", LIST, "--yes"
    )
    assert code == 0, output
    assert output.strip().splitlines()[-1] == (
        f"Removed the suppression of anna.mueller@example.com on {LIST}."
    )
    assert suppressed() == {"anna.mueller@example.com": "*"}
    code, output = run(
        "unsubscribes", "remove", "anna.mueller@example.com", "--list", LIST, "--yes"
    )
    assert code == 1
    assert f"anna.mueller@example.com is not suppressed on {LIST}" in output
    assert "all lists" in output  # where it still is
    code, output = run(
        "unsubscribes",
        "remove",
        "anna.mueller@example.com",
        "--yes",
        "--reason",
        "re-subscribed at the info stand",
    )
    assert code == 0, output
    assert "on all lists" in output
    assert suppressed() == {}
    code, output = run("send", "campaigns/kasachstan.yaml", "--dry-run")
    assert "0 suppressed" in output
    db = sqlite3.connect(project / ".kzmail" / "state.db")
    try:
        records = db.execute(
            "SELECT list_id, address, reason FROM unsuppressions ORDER BY at, list_id"
        ).fetchall()
    finally:
        db.close()
    assert records == [
        (LIST, "anna.mueller@example.com", "removed by the organiser"),
        ("*", "anna.mueller@example.com", "re-subscribed at the info stand"),
    ]
    code, output = run("unsubscribes", "remove", "nobody@example.org", "--yes")
    assert code == 1
    assert "nobody@example.org is not suppressed" in output
    assert "Traceback" not in output


def test_remove_forgets_it_in_a_journal_that_already_holds_the_list(project: Path) -> None:
    journal = Journal(project / ".kzmail")
    try:
        journal.suppress(LIST, "anna.mueller@example.com", "unsubscribe")
        assert journal.is_suppressed(LIST, "anna.mueller@example.com")
        assert journal.unsuppress("anna.mueller@example.com", None, "wrong") == [LIST]
        assert not journal.is_suppressed(LIST, "anna.mueller@example.com")
    finally:
        journal.close()

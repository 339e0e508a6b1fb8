"""`kzmail inbox imaps://` against a real Dovecot on loopback: it reads, flags handled
messages \\Seen (or moves them), never deletes, changes nothing on a second run, and with
--dry-run flags nothing."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from kzmail.cli.main import cli
from kzmail.models import ANY_LIST
from kzmail.state.journal import Journal
from tests.helpers.bounces import SAMPLES, dsn
from tests.helpers.dovecot import PASSWORD, USER, Dovecot, dovecot

runner = CliRunner()
LIST = "kasachstan.newsletter.arbeiterinnenmacht.example.org"
HARD = next(s for s in SAMPLES if s.name == "gmail-no-account")
SPAM = next(s for s in SAMPLES if s.name == "gmail-unsolicited")


@pytest.fixture
def imap_server() -> Iterator[Dovecot]:
    try:
        with dovecot() as server:
            yield server
    except RuntimeError as exc:
        pytest.fail(str(exc))


def _append(server: Dovecot, messages: list[bytes]) -> None:
    imap = server.connect()
    try:
        for data in messages:
            imap.append("INBOX", "", None, data)
        imap.create("Handled")
    finally:
        imap.logout()


def _flags(server: Dovecot, folder: str = "INBOX") -> dict[str, str]:
    imap = server.connect()
    try:
        imap.select(folder)
        _, found = imap.uid("FETCH", "1:*", "(FLAGS)")
    finally:
        imap.logout()
    result: dict[str, str] = {}
    for line in found:
        if isinstance(line, bytes) and (m := re.search(rb"UID (\d+) FLAGS \(([^)]*)\)", line)):
            result[m.group(1).decode()] = m.group(2).decode()
    return result


def _inbox(server: Dovecot, *args: str) -> Any:
    url = f"imaps://{USER}@127.0.0.1:{server.imaps_port}/INBOX"
    result = runner.invoke(
        cli,
        [
            "inbox",
            url,
            "--password-env",
            "KZ_IMAP",
            "--cafile",
            str(server.cert),
            "--any-address",
            "--json",
            *args,
        ],
        env={"KZ_IMAP": PASSWORD},
    )
    assert result.exit_code == 0, result.stderr + str(result.exception)
    return json.loads(result.stdout)


def test_imaps_reads_flags_and_a_second_run_changes_nothing(
    project: Path, imap_server: Dovecot
) -> None:
    _append(imap_server, [HARD.data, SPAM.data.replace(b"<dsn.1@", b"<dsn.2@")])

    dry = _inbox(imap_server, "--dry-run")
    assert [m["id"] for m in dry["messages"]] == ["1", "2"]  # IMAP UIDs
    assert _flags(imap_server) == {"1": "", "2": ""}  # --dry-run flags nothing

    first = _inbox(imap_server)
    verdicts = {r["address"]: r["suppress"] for m in first["messages"] for r in m["recipients"]}
    assert verdicts == {HARD.address: True, SPAM.address: False}
    assert _flags(imap_server) == {"1": "\\Seen", "2": "\\Seen"}
    journal = Journal(project / ".kzmail")
    try:
        assert journal.suppressed_on(str(HARD.address)) == [ANY_LIST]
        assert journal.suppressed_on(str(SPAM.address)) == []
        before = journal.suppressions()
    finally:
        journal.close()

    second = _inbox(imap_server)
    assert second["totals"]["repeated"] == 2
    assert second["totals"]["suppressed"] == 0
    journal = Journal(project / ".kzmail")
    try:
        assert journal.suppressions() == before
    finally:
        journal.close()


def test_move_to_moves_and_never_deletes(project: Path, imap_server: Dovecot) -> None:
    bounce = dsn("mx.test", "weg@example.org", "5.1.1", "550 5.1.1 user unknown")
    _append(imap_server, [bounce])
    _inbox(imap_server, "--move-to", "Handled")
    assert _flags(imap_server) == {}
    moved = _flags(imap_server, "Handled")
    assert len(moved) == 1 and "\\Deleted" not in next(iter(moved.values()))


def test_a_move_to_folder_that_does_not_exist_stops_before_anything_changes(
    project: Path, imap_server: Dovecot
) -> None:
    _append(imap_server, [HARD.data])
    url = f"imaps://{USER}@127.0.0.1:{imap_server.imaps_port}/INBOX"
    result = runner.invoke(
        cli,
        [*_login(url, imap_server), "--any-address", "--move-to", "Erledigt"],
        env={"KZ_IMAP": PASSWORD},
    )
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "'Erledigt'" in lines[0] and "nothing was" in lines[0], lines
    assert _flags(imap_server) == {"1": ""}  # not flagged, not moved
    journal = Journal(project / ".kzmail")
    try:
        assert journal.suppressed_on(str(HARD.address)) == []
        assert not journal.handled("mid:<dsn.1@mx.test>")
    finally:
        journal.close()


def _login(url: str, server: Dovecot) -> list[str]:
    return ["inbox", url, "--password-env", "KZ_IMAP", "--cafile", str(server.cert)]


def _padded(number: int) -> tuple[str, bytes]:
    address = f"weg{number}@example.org"
    data = dsn(
        "mx.test",
        address,
        "5.1.1",
        "550 5.1.1 user unknown",
        own_id=f"<cut.{number}@mx.test>",
        returned_id=f"<r{number}@x>",
    )
    padding = b"Delivery to the following recipient failed"
    return address, data.replace(padding, padding + b" " + b"." * 40_000, 1)


def test_a_connection_dropped_mid_run_is_one_line_and_keeps_what_was_committed(
    project: Path, imap_server: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kzmail.services import inbox as service
    from tests.helpers.cutting_proxy import cutting_proxy

    messages = [_padded(n) for n in range(1, 7)]
    _append(imap_server, [data for _, data in messages])
    monkeypatch.setattr(service, "BATCH", 2)  # commit (and flag) every two messages
    size = len(messages[0][1])
    # the line drops in the middle of the fourth message: two are committed by then
    with cutting_proxy(imap_server.imaps_port, int(3.5 * size) + 5000) as port:
        url = f"imaps://{USER}@127.0.0.1:{port}/INBOX"
        result = runner.invoke(
            cli,
            [*_login(url, imap_server), "--any-address"],
            env={"KZ_IMAP": PASSWORD},
        )
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"IMAP 127.0.0.1:{port}" in lines[0], lines
    assert "connection was lost" in lines[0] and "Traceback" not in result.output

    flags = _flags(imap_server)
    journal = Journal(project / ".kzmail")
    try:
        handled = {str(n) for n in range(1, 7) if journal.handled(f"mid:<cut.{n}@mx.test>")}
        suppressed = {a for n, (a, _) in enumerate(messages, 1) if journal.suppressed_on(a)}
    finally:
        journal.close()
    assert 0 < len(handled) < 6, handled  # some batches committed, not all
    flagged = {uid for uid, f in flags.items() if "\\Seen" in f}
    assert flagged <= handled  # never flagged before the state holds it
    # no half state: exactly the remembered messages' suppressions are there
    assert suppressed == {messages[int(n) - 1][0] for n in handled}

    again = _inbox(imap_server)  # the line is back: the rest is done, nothing twice
    assert again["totals"]["repeated"] == len(handled)
    assert again["totals"]["suppressed"] == 6 - len(handled)
    assert all("\\Seen" in f for f in _flags(imap_server).values())


def test_unsubscribes_import_reads_an_imaps_folder_like_inbox(
    project: Path, imap_server: Dovecot
) -> None:
    from tests.helpers.bounces import reply

    reader = "leserin@example.org"
    _append(imap_server, [reply(reader, "abmelden", "Bitte austragen.", own_id="<a.1@x>")])
    url = f"imaps://{USER}@127.0.0.1:{imap_server.imaps_port}/INBOX"
    result = runner.invoke(
        cli,
        ["unsubscribes", "import", *_login(url, imap_server)[1:], "--trust-from"],
        env={"KZ_IMAP": PASSWORD},
    )
    assert result.exit_code == 0, result.output
    assert f"suppressed {reader}" in result.stdout
    assert _flags(imap_server) == {"1": "\\Seen"}
    journal = Journal(project / ".kzmail")
    try:
        assert journal.suppressed_on(reader) == [LIST]
    finally:
        journal.close()

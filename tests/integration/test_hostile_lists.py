"""Hostile lists: every one gives a clear one-line error or a safely escaped value; never a
traceback, never a second recipient, never an injected header. Sent through a real SMTP
server where sending is the point."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

from typer.testing import CliRunner

from kzmail.cli.main import cli
from tests.helpers.campaigns import use_relay
from tests.helpers.lists import write_text, write_xlsx
from tests.helpers.smtp import SmtpServer

runner = CliRunner()
LIST = "subscribers.example.csv"


def _check(project: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli, ["check", "campaigns/kasachstan.yaml", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def _one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr
    return errors[0]


def test_hostile_rows_are_sent_safely_or_not_at_all(project: Path, smtp_server: SmtpServer) -> None:
    use_relay(project / "campaigns/kasachstan.yaml", smtp_server)
    write_text(
        project / LIST,
        "email,name\r\n"
        'eve@example.org,"Eve\r\nBcc: victim@example.net\r\nX-Evil: 1"\r\n'
        "tpl@example.org,{{ 7*7 }} <script>alert(1)</script>\r\n"
        '"Mallory <mallory@example.org>, second@example.net",M\r\n'
        '"a@example.org\nb@example.org",Two Lines\r\n'
        "nul\x00@example.org,Nul\r\n"
        "zero@example.org,Ze\x00ro\r\n",
    )
    result = runner.invoke(cli, ["send", "campaigns/kasachstan.yaml", "--yes"])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    received = smtp_server.handler.messages
    assert sorted(r for m in received for r in m.rcpt_tos) == [
        "eve@example.org",
        "tpl@example.org",
        "zero@example.org",
    ]
    assert all(len(m.rcpt_tos) == 1 for m in received)
    by_rcpt = {
        m.rcpt_tos[0]: email.message_from_bytes(m.data, policy=email.policy.default)
        for m in received
    }
    eve = by_rcpt["eve@example.org"]
    assert eve["Bcc"] is None
    assert eve["X-Evil"] is None
    assert str(eve["To"]) == '"Eve Bcc: victim@example.net X-Evil: 1" <eve@example.org>'
    html = by_rcpt["tpl@example.org"].get_body(("html",))
    assert html is not None
    content = html.get_content()
    assert "Hallo {{ 7*7 }} &lt;script&gt;alert(1)&lt;/script&gt;," in content
    assert "<script>" not in content
    assert str(by_rcpt["zero@example.org"]["To"]) == "Ze ro <zero@example.org>"
    skipped = result.stderr
    assert "more than one address in one cell" in skipped
    assert "line break or control character" in skipped


def test_ten_megabytes_in_one_cell(project: Path) -> None:
    write_text(
        project / LIST,
        'email,name\nok@example.org,Ok\nbig@example.org,"'
        + "x" * 10_000_000
        + '"\nlater@example.org,L\n',
    )
    code, _, stderr = _check(project)
    assert code == 2  # a mistake in the files (README's exit codes)
    line = _one_error_line(stderr)
    assert line.startswith(f"error: {project / LIST}:3: a cell is longer than 131,072 characters")


def test_nul_bytes_in_cells(project: Path) -> None:
    write_text(project / LIST, "email,name\nnul\x00@example.org,A\nok@example.org,B\x00C\n")
    code, stdout, _ = _check(project, "--json")
    import json

    data = json.loads(stdout)
    assert code == 0
    assert (data["rows"], data["invalid"], data["sendable"]) == (2, 1, 1)
    assert data["problems"] == [
        {
            "file": str(project / LIST),
            "line": 2,
            "kind": "invalid",
            "reason": "the address cell holds a line break or control character",
        }
    ]


def test_empty_file(project: Path) -> None:
    write_text(project / LIST, "")
    code, _, stderr = _check(project)
    assert code == 2  # a mistake in the files (README's exit codes)
    assert (
        _one_error_line(stderr) == f"error: {project / LIST}:1: the list is empty (no header row)"
    )


def test_header_only_file(project: Path) -> None:
    write_text(project / LIST, "email,name,city\r\n")
    code, stdout, stderr = _check(project)
    assert code == 2  # a mistake in the files (README's exit codes)
    assert _one_error_line(stderr) == "error: no sendable subscriber in the list"
    assert f"note: {project / LIST}: the list has a header row but no subscriber rows" in stdout


def test_binary_file_named_csv(project: Path) -> None:
    (project / LIST).write_bytes(bytes(range(256)) * 64)
    code, _, stderr = _check(project)
    assert code == 2  # a mistake in the files (README's exit codes)
    assert _one_error_line(stderr) == (
        f"error: {project / LIST}:1: this is not a text list "
        "(it holds binary data); export the list as CSV or "
        "give the spreadsheet file itself"
    )


def test_spreadsheet_named_csv(project: Path) -> None:
    write_xlsx(project / "real.xlsx", {"S": [["email"], ["a@example.org"]]})
    (project / LIST).write_bytes((project / "real.xlsx").read_bytes())
    code, _, stderr = _check(project)
    assert code == 2  # a mistake in the files (README's exit codes)
    assert (
        "this is a zipped file (an .xlsx or .ods spreadsheet?), not a text list"
        in _one_error_line(stderr)
    )


def test_corrupt_xlsx(project: Path) -> None:
    write_text(project / "broken.xlsx", "email\na@example.org\n")
    code, _, stderr = _check(project, "--subscribers", "broken.xlsx")
    assert code == 2  # a mistake in the files (README's exit codes)
    assert _one_error_line(stderr).startswith(
        "error: broken.xlsx: cannot read this spreadsheet (invalid Zip archive"
    )

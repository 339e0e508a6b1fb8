"""`kzmail check` and `kzmail clean` through the real CLI in a project copy; `send` shows the
same summary; suppressions come from the real state database."""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.rcode
import dns.resolver
import pytest
from python_calamine import CalamineWorkbook
from typer.testing import CliRunner

from kzmail.cli.common import current_workspace
from kzmail.cli.main import cli
from kzmail.models import ANY_LIST
from kzmail.services import lists as service_lists
from kzmail.state.journal import Journal
from tests.helpers.campaigns import edit_campaign, use_relay
from tests.helpers.lists import write_text, write_xlsx
from tests.helpers.smtp import SmtpServer

runner = CliRunner()
CAMPAIGN = "campaigns/kasachstan.yaml"
LIST_ID = "kasachstan.newsletter.arbeiterinnenmacht.example.org"
PROBLEMS = (
    "email,name,city\r\n"
    "anna@example.org,Anna,Berlin\r\n"
    "kaputt,Kaputt,Köln\r\n"
    "ANNA@example.org,Anna 2,Bonn\r\n"
    "gone@example.org,Gone,Ulm\r\n"
    'bob@example.org,"Müller, Bob","=HYPERLINK(""http://x"")"\r\n'
)


def _invoke(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(cli, list(args), input=input)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result.exit_code, result.stdout, result.stderr


def test_check_example_campaign(project: Path) -> None:
    code, stdout, stderr = _invoke("check")
    assert code == 0, stderr
    assert stdout.splitlines() == [
        "12 rows: 12 valid, 0 invalid, 0 duplicates, 0 marked unsubscribed, 0 suppressed "
        "(unsubscribed or bounced earlier) -> 12 sendable",
        "OK: can be sent to 12 subscribers; rows with problems are skipped.",
    ]


@pytest.mark.parametrize(
    ("text", "summary"),
    [
        ("email\na@example.org\n", "1 row: 1 valid, 0 invalid, 0 duplicates,"),
        ("email\na@example.org\nA@example.org\n", "2 rows: 2 valid, 0 invalid, 1 duplicate,"),
    ],
)
def test_the_summary_says_1_row_and_1_duplicate(project: Path, text: str, summary: str) -> None:
    write_text(project / "one.csv", text)
    code, stdout, stderr = _invoke("check", "--subscribers", "one.csv")
    assert code == 0, stderr
    assert summary + " 0 marked unsubscribed, 0 suppressed" in stdout


def test_check_prints_each_problem_then_summary(project: Path) -> None:
    listing = write_text(project / "subscribers.example.csv", PROBLEMS)
    Journal(project / ".kzmail").suppress(LIST_ID, "gone@example.org", "unsubscribed")
    code, stdout, _ = _invoke("check", CAMPAIGN)
    assert code == 0
    assert stdout.splitlines() == [
        f"{listing}:3: invalid address 'kaputt': An email address must have an @-sign.",
        f"{listing}:4: duplicate of line 2: ANNA@example.org",
        f"{listing}:5: gone@example.org unsubscribed or bounced earlier (state database): "
        "not mailed",
        "5 rows: 4 valid, 1 invalid, 1 duplicate, 0 marked unsubscribed, 1 suppressed "
        "(unsubscribed or bounced earlier) -> 2 sendable",
        "OK: can be sent to 2 subscribers; rows with problems are skipped.",
    ]


def test_check_json(project: Path) -> None:
    listing = write_text(project / "subscribers.example.csv", PROBLEMS)
    Journal(project / ".kzmail").suppress(ANY_LIST, "gone@example.org", "bounced")
    code, stdout, _ = _invoke("check", "--json")
    assert code == 0
    data = json.loads(stdout)
    counts = {
        k: data[k]
        for k in (
            "rows",
            "valid",
            "invalid",
            "duplicates",
            "suppressed",
            "sendable",
            "unsubscribed",
        )
    }
    assert counts == {
        "rows": 5,
        "valid": 4,
        "invalid": 1,
        "duplicates": 1,
        "suppressed": 1,
        "sendable": 2,
        "unsubscribed": 0,
    }
    assert all(type(v) is int for v in counts.values())
    assert [(p["file"], p["line"], p["kind"]) for p in data["problems"]] == [
        (str(listing), 3, "invalid"),
        (str(listing), 4, "duplicate"),
        (str(listing), 5, "suppressed"),
    ]
    assert data["ok"] is True
    assert data["problems_truncated"] == 0
    assert data["errors"] == []


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("name\nAnn\n", "no email column"),
        ("email\nkaputt\nauch kaputt\n", "no sendable subscriber in the list"),
    ],
)
def test_check_exits_2_when_the_campaign_cannot_be_sent(
    project: Path, content: str, expected: str
) -> None:
    write_text(project / "subscribers.example.csv", content)
    code, _, stderr = _invoke("check")
    assert code == 2  # a mistake in the files (README's exit codes)
    assert expected in stderr
    assert len(stderr.strip().splitlines()) == 1
    code, stdout, _ = _invoke("check", "--json")
    assert code == 2  # a mistake in the files (README's exit codes)
    assert json.loads(stdout)["ok"] is False


def test_check_exits_2_for_an_invalid_campaign_with_file_line_key(project: Path) -> None:
    path = project / CAMPAIGN
    edit_campaign(path, lambda t: t.replace("tls: starttls", "tls: maybe"))
    code, _, stderr = _invoke("check", CAMPAIGN)
    assert code == 2  # a mistake in the files (README's exit codes)
    assert stderr.startswith(f"error: {CAMPAIGN}:")
    assert "smtp.tls: Input should be 'none', 'starttls' or 'ssl'" in stderr


def test_check_finds_template_fields_the_list_lacks(project: Path) -> None:
    edit_campaign(
        project / "templates/newsletter.mjml",
        lambda t: t.replace("{{ texts.unsubscribe }}", "{{ subscriber.plz }}"),
    )
    code, _, stderr = _invoke("check")
    assert code == 2  # a mistake in the files (README's exit codes)
    assert "unknown subscriber field 'plz'" in stderr
    assert "'plz'" in stderr
    assert "rendering row 2" in stderr


def test_campaign_lists_as_mappings_merged(project: Path) -> None:
    write_text(
        project / "de.csv",
        "E-Mail-Adresse;Wer;Aus\r\nanna@example.org;Änne;\r\nneu@example.org;Neu;ja\r\n",
        encoding="cp1252",
    )
    write_xlsx(project / "more.xlsx", {"S": [["Kontakt"], ["ANNA@example.org"], ["x@example.org"]]})
    edit_campaign(
        project / CAMPAIGN,
        lambda t: t.replace(
            "subscribers: ../subscribers.example.csv",
            "subscribers:\n  - path: ../de.csv\n    encoding: cp1252\n    delimiter: ';'\n"
            "    columns: {name: Wer, unsubscribed: Aus}\n"
            "  - {path: ../more.xlsx, columns: {email: Kontakt}}\n",
        ),
    )
    code, stdout, _ = _invoke("check", "--json")
    data = json.loads(stdout)
    assert code == 0
    assert (data["rows"], data["sendable"], data["duplicates"], data["unsubscribed"]) == (
        4,
        2,
        1,
        1,
    )
    assert [(Path(p["file"]).name, p["line"], p["kind"]) for p in data["problems"]] == [
        ("de.csv", 3, "unsubscribed"),
        ("more.xlsx", 2, "duplicate"),
    ]
    assert data["notes"] == []


def test_campaign_list_errors_name_file_line_and_key(project: Path) -> None:
    path = project / CAMPAIGN
    edit_campaign(
        path,
        lambda t: t.replace(
            "subscribers: ../subscribers.example.csv",
            "subscribers:\n  - ../subscribers.example.csv\n  - path: ../missing.csv\n",
        ),
    )
    code, _, stderr = _invoke("check", CAMPAIGN)
    lines = path.read_text(encoding="utf-8").splitlines()
    line = next(i for i, text in enumerate(lines, 1) if "missing.csv" in text)
    assert code == 2  # a mistake in the files (README's exit codes)
    assert stderr.startswith(f"error: {CAMPAIGN}:{line}: subscribers.1.path: file not found")
    edit_campaign(
        path,
        lambda t: t.replace(
            "  - path: ../missing.csv\n",
            "  - {path: ../subscribers.example.csv, encoding: klingon}\n",
        ),
    )
    code, _, stderr = _invoke("check", CAMPAIGN)
    assert code == 2  # a mistake in the files (README's exit codes)
    assert f"{CAMPAIGN}:{line}: subscribers.1.encoding: unknown encoding 'klingon'" in stderr


def test_check_other_lists_without_a_campaign(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KZMAIL_STATE_DIR", str(tmp_path / ".kzmail"))
    write_text(tmp_path / "a.csv", "email\na@example.org\n")
    write_text(tmp_path / "b.csv", "email\nA@example.org\nb@example.org\n")
    code, stdout, _ = _invoke("check", "--subscribers", "a.csv", "--subscribers", "b.csv")
    assert code == 0
    assert stdout.splitlines()[0] == "b.csv:2: duplicate of a.csv:2: A@example.org"


def test_check_lists_alone_in_a_folder_of_several_campaigns(project: Path) -> None:
    """README: `--subscribers` works without a campaign, so also when campaigns/ holds
    several and none is named; a command that needs the campaign still asks for its name."""
    (project / "campaigns" / "second.yaml").write_bytes((project / CAMPAIGN).read_bytes())
    write_text(project / "a.csv", "email\na@example.org\nA@example.org\n")
    code, stdout, stderr = _invoke("check", "--subscribers", "a.csv")
    assert code == 0, stderr
    assert stdout.splitlines()[0] == "a.csv:3: duplicate of line 2: A@example.org"
    assert "OK: can be sent to 1 subscriber;" in stdout
    assert "several campaigns (kasachstan.yaml, second.yaml)" in stderr
    assert "checked alone" in stderr
    code, _, stderr = _invoke("check")
    assert code == 2
    assert "several campaigns (kasachstan.yaml, second.yaml); name the one you mean" in stderr


def test_send_shows_the_same_summary_before_asking(project: Path, smtp_server: SmtpServer) -> None:
    listing = write_text(project / "subscribers.example.csv", PROBLEMS)
    use_relay(project / CAMPAIGN, smtp_server)
    _, stdout, stderr = _invoke("send", CAMPAIGN, input="n\n")
    assert f"skipped {listing}:3: invalid address 'kaputt'" in stderr
    summary = (
        "5 rows: 4 valid, 1 invalid, 1 duplicate, 0 marked unsubscribed, 0 suppressed "
        "(unsubscribed or bounced earlier) -> 3 sendable"
    )
    assert summary in stdout
    assert stdout.index(summary) < stdout.index("Send now?")
    assert smtp_server.handler.messages == []


def test_suppressed_addresses_are_never_mailed(project: Path, smtp_server: SmtpServer) -> None:
    write_text(project / "subscribers.example.csv", PROBLEMS)
    Journal(project / ".kzmail").suppress(LIST_ID, "GONE@example.org", "unsubscribed")
    use_relay(project / CAMPAIGN, smtp_server)
    code, _, _ = _invoke("send", CAMPAIGN, "--yes")
    assert code == 0
    assert sorted(m.rcpt_tos[0] for m in smtp_server.handler.messages) == [
        "anna@example.org",
        "bob@example.org",
    ]


def test_clean_writes_tidy_utf8_csv(project: Path) -> None:
    write_text(
        project / "raw.csv",
        "Liste\n\nE-Mail;Name;Stadt;;\n mailto:A@Example.org ;Ann;"
        '"Köln\nNord";;\nkaputt;X;Y;;\na@example.org;Dup;Z;;\n',
        encoding="cp1252",
    )
    Journal(project / ".kzmail").suppress(LIST_ID, "x@example.org", "bounced")
    code, stdout, _ = _invoke("clean", "raw.csv", "--out", "clean.csv")
    assert code == 0
    assert stdout.splitlines()[-1] == "Wrote 1 subscriber to clean.csv"
    assert (project / "clean.csv").read_bytes() == (
        "\ufeffE-Mail;Name;Stadt\r\nA@example.org;Ann;Köln Nord\r\n"  # `;` in, `;` out
    ).encode()


@pytest.mark.parametrize(
    ("text", "options", "out", "written"),
    [
        (
            'email;name\na@example.org;"Müller; Ann, B"\n',
            [],
            "clean.csv",
            'email;name\r\na@example.org;"Müller; Ann, B"',
        ),
        (
            "email,name\na@example.org,Ann; B\n",
            [],
            "clean.csv",
            "email,name\r\na@example.org,Ann; B",
        ),
        (  # as many `,` as `;` a row: undetectable, so `;` is given
            "email;name, title\na@example.org;Ann, Dr\n",
            ["--delimiter", ";"],
            "clean.txt",
            "email;name, title\r\na@example.org;Ann, Dr",
        ),
        ("email;name\na@example.org;Ann\n", [], "clean.tsv", "email\tname\r\na@example.org\tAnn"),
    ],
    ids=["semicolon", "comma", "given", "tsv-out"],
)
def test_clean_csv_is_separated_like_the_input(
    project: Path, text: str, options: list[str], out: str, written: str
) -> None:
    """German Excel opens a `,` CSV as one column: a `;` list comes back with `;`; the
    delimiter read (detected or `--delimiter`) is the one written, a `.tsv` gets tabs."""
    write_text(project / "raw.csv", text)
    code, _, stderr = _invoke("clean", "raw.csv", "--out", out, *options)
    assert code == 0, stderr
    assert (project / out).read_bytes() == ("\ufeff" + written + "\r\n").encode()


def test_clean_of_a_spreadsheet_writes_commas(project: Path) -> None:
    write_xlsx(project / "raw.xlsx", {"Liste": [["email", "name"], ["a@example.org", "Ann"]]})
    code, _, stderr = _invoke("clean", "raw.xlsx", "--out", "clean.csv")
    assert code == 0, stderr
    assert (
        project / "clean.csv"
    ).read_bytes() == "\ufeffemail,name\r\na@example.org,Ann\r\n".encode()


def test_clean_to_xlsx_keeps_columns_and_never_makes_formulas(project: Path) -> None:
    write_text(project / "raw.csv", PROBLEMS)
    Journal(project / ".kzmail").suppress("other.list.example", "gone@example.org", "unsub")
    code, _, _ = _invoke("clean", "raw.csv", "--out", "clean.xlsx")
    assert code == 0
    rows = list(
        CalamineWorkbook.from_path(str(project / "clean.xlsx")).get_sheet_by_index(0).iter_rows()
    )
    assert rows == [
        ["email", "name", "city"],
        ["anna@example.org", "Anna", "Berlin"],
        ["bob@example.org", "Müller, Bob", '=HYPERLINK("http://x")'],
    ]
    code, _, _ = _invoke("clean", "raw.csv", "--out", "clean2.tsv", "--campaign", CAMPAIGN)
    assert code == 0
    assert (project / "clean2.tsv").read_text(encoding="utf-8-sig").splitlines()[:2] == [
        "email\tname\tcity",
        "anna@example.org\tAnna\tBerlin",
    ]
    assert "gone@example.org" in (project / "clean2.tsv").read_text(encoding="utf-8-sig")


def test_clean_refuses_to_overwrite_and_unreadable_lists(project: Path) -> None:
    write_text(project / "raw.csv", PROBLEMS)
    code, _, stderr = _invoke("clean", "raw.csv", "--out", "raw.csv")
    assert code == 2  # a mistake in the files (README's exit codes)
    assert "not over the original" in stderr
    write_text(project / "empty.csv", "")
    code, _, stderr = _invoke("clean", "empty.csv", "--out", "out.csv")
    assert code == 2  # a mistake in the files (README's exit codes)
    assert stderr == "error: empty.csv:1: the list is empty (no header row)\n"
    assert not (project / "out.csv").exists()
    code, _, stderr = _invoke("clean", "raw.csv", "--out", "out.csv", "--encoding", "klingon")
    assert code == 2  # a wrong option, like click's usage errors
    assert stderr.startswith("error: --encoding: unknown encoding 'klingon'")
    assert not (project / "out.csv").exists()


class NxdomainServer:
    """A real DNS server on loopback that answers NXDOMAIN to everything and counts."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.queries: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            query = dns.message.from_wire(data)
            self.queries.append(str(query.question[0].name))
            answer = dns.message.make_response(query)
            answer.set_rcode(dns.rcode.NXDOMAIN)
            self.sock.sendto(answer.to_wire(), peer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def nxdomain() -> Iterator[NxdomainServer]:
    server = NxdomainServer()
    yield server
    server.close()


def test_dns_is_only_asked_with_check_dns(
    project: Path, nxdomain: NxdomainServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(service_lists.DNS_SERVER_ENV, f"127.0.0.1:{nxdomain.port}")
    resolver = service_lists.dns_resolver(os.environ)
    assert isinstance(resolver, dns.resolver.Resolver)
    assert resolver.port == nxdomain.port
    result = service_lists.check(current_workspace(), None, resolver=resolver)
    assert result.ok
    assert nxdomain.queries == []
    code, _, _ = _invoke("check")
    assert code == 0
    assert nxdomain.queries == []
    code, stdout, _ = _invoke("check", "--check-dns", "--json")
    data = json.loads(stdout)
    assert code == 2  # a mistake in the files (README's exit codes)
    assert data["sendable"] == 0
    assert data["invalid"] == 12
    assert data["problems"][0]["reason"] == (
        "domain does not accept mail: The domain name example.org does not exist."
    )
    assert sorted(set(nxdomain.queries)) == ["example.com.", "example.net.", "example.org."]


HOSTILE = (
    "email,name,=evil header,note\r\n"
    "=cmd|'/Ccalc'!A0@example.org,=1+1,\"\t=1+1\",@SUM(A1)\r\n"
    'plus@example.org,+49 30 1234,-5,"\r=2+2"\r\n'
    "-dash@example.org, =3+3,\uff1d4+4,harmless\r\n"
)


def _csv_rows(path: Path) -> list[list[str]]:
    import csv

    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle))


def test_clean_csv_writes_formula_cells_as_text_but_never_alters_addresses(project: Path) -> None:
    write_text(project / "raw.csv", HOSTILE)
    code, _, stderr = _invoke("clean", "raw.csv", "--out", "clean.csv")
    assert code == 0, stderr
    assert _csv_rows(project / "clean.csv") == [
        ["email", "name", "'=evil header", "note"],
        ["=cmd|'/Ccalc'!A0@example.org", "'=1+1", "'=1+1", "'@SUM(A1)"],
        ["plus@example.org", "'+49 30 1234", "'-5", "'=2+2"],
        ["-dash@example.org", "'=3+3", "'\uff1d4+4", "harmless"],
    ]


def test_clean_xlsx_keeps_formula_looking_text_as_string_cells(project: Path) -> None:
    from openpyxl import load_workbook

    write_text(project / "raw.csv", HOSTILE)
    code, _, stderr = _invoke("clean", "raw.csv", "--out", "clean.xlsx")
    assert code == 0, stderr
    sheet = load_workbook(project / "clean.xlsx").active
    assert sheet is not None
    cells = [[(c.value, c.data_type) for c in row] for row in sheet.iter_rows()]
    assert cells[1] == [
        ("=cmd|'/Ccalc'!A0@example.org", "s"),
        ("=1+1", "s"),
        ("=1+1", "s"),
        ("@SUM(A1)", "s"),
    ]
    assert all(kind == "s" for row in cells for _, kind in row)


CONTROLS = (
    "\r\n\x00\u2028\u2029\u0085\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\x1b\x9b\x7f"
)


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_clean_removes_control_characters_from_every_column(project: Path, suffix: str) -> None:
    write_text(
        project / "raw.csv",
        f'email,name,"ci{CONTROLS}ty"\r\n'
        f'anna@example.org,"An\u202ena{CONTROLS}","Köln\r\nNord\x00\u2066x"\r\n',
    )
    code, _, stderr = _invoke("clean", "raw.csv", "--out", f"clean{suffix}")
    assert code == 0, stderr
    out = project / f"clean{suffix}"
    rows = (
        _csv_rows(out)
        if suffix == ".csv"
        else list(CalamineWorkbook.from_path(str(out)).get_sheet_by_index(0).iter_rows())
    )
    assert rows == [["email", "name", "ci ty"], ["anna@example.org", "An na", "Köln Nord x"]]


def test_check_notes_addresses_that_idna_or_nfkc_changed(project: Path) -> None:
    write_text(
        project / "raw.csv",
        "email\r\nanna@p\u0430ypal.example\r\nbob@\uff45xample.org\r\nplain@Example.org\r\n",
    )
    code, stdout, stderr = _invoke("check", "--subscribers", "raw.csv")
    assert code == 0, stderr
    notes = [line for line in stdout.splitlines() if line.startswith("note:")]
    assert notes == [
        "note: raw.csv:2: address 'anna@p\u0430ypal.example' was normalised (IDNA/NFKC) to "
        "'anna@xn--pypal-4ve.example': make sure it is the one meant",
        "note: raw.csv:3: address 'bob@\uff45xample.org' was normalised (IDNA/NFKC) to "
        "'bob@example.org': make sure it is the one meant",
    ]
    code, stdout, _ = _invoke("check", "--subscribers", "raw.csv", "--json")
    assert [n.split(": address")[0] for n in json.loads(stdout)["notes"]] == [
        "raw.csv:2",
        "raw.csv:3",
    ]


def test_check_notes_addresses_a_spreadsheet_would_run_as_formulas(project: Path) -> None:
    write_text(
        project / "raw.csv", "email,name\r\n=cmd|'/Ccalc'!A0@example.org,X\r\nok@example.org,Y\r\n"
    )
    code, stdout, stderr = _invoke("check", "--subscribers", "raw.csv")
    assert code == 0, stderr
    assert [line for line in stdout.splitlines() if line.startswith("note:")] == [
        "note: raw.csv:2: address \"=cmd|'/Ccalc'!A0@example.org\" starts with '=': a "
        "spreadsheet may run it as a formula when it opens a CSV of this list"
    ]


def test_check_address_notes_are_capped_per_list(project: Path) -> None:
    rows = "".join(f"u{i}@b\u00fccher.example\r\n" for i in range(150))
    write_text(project / "raw.csv", "email\r\n" + rows)
    code, stdout, _ = _invoke("check", "--subscribers", "raw.csv", "--json")
    assert code == 0
    notes = json.loads(stdout)["notes"]
    assert len(notes) == 101
    assert notes[-1] == "raw.csv: 50 more addresses with a note like the above"

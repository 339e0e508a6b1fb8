"""Every format and dialect organisers export, read from real files: exact subscribers,
exact problems, and the row numbers a person sees in their spreadsheet."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from kzmail.errors import SubscriberListError
from kzmail.models import ListColumns, ListSource
from tests.helpers.lists import (
    emails,
    lines,
    read_all,
    write_ods,
    write_text,
    write_xls,
    write_xlsx,
)

GERMAN = (
    "E-Mail;Vorname;Nachname;Ort\r\n"
    "anna.mueller@example.org;Anna;Müller;Köln\r\n"
    "jürgen@example.org;Jürgen;Weiß;Düsseldorf\r\n"
    '"peter@example.org";Peter;"Schmidt; Sohn";Zürich\r\n'
)


def test_utf8_without_bom_comma_lf(tmp_path: Path) -> None:
    path = write_text(
        tmp_path / "a.csv",
        'email,name,city\nanna@example.org,Anna,Berlin\nbob@example.org,"Müller, Anna",Köln\n',
    )
    subs, problems, summary = read_all(path)
    assert emails(subs) == [(2, "anna@example.org", "Anna"), (3, "bob@example.org", "Müller, Anna")]
    assert subs[1].fields == {"city": "Köln"}
    assert problems == []
    assert summary.notes == []


def test_bom_does_not_hide_the_email_column(tmp_path: Path) -> None:
    path = write_text(tmp_path / "a.csv", "\ufeffEmail,Name\r\nanna@example.org,Anna\r\n")
    subs, problems, _ = read_all(path)
    assert emails(subs) == [(2, "anna@example.org", "Anna")]
    assert problems == []


def test_utf16_with_bom_tab_separated_excel_unicode_text(tmp_path: Path) -> None:
    text = (
        "E-Mail\tName\tPLZ\r\nanna@example.org\tAnna Müller\t50667\r\nölaf@example.org\tÖlaf\t1\r\n"
    )
    path = tmp_path / "unicode.txt"
    path.write_bytes(b"\xff\xfe" + text.encode("utf-16-le"))
    subs, problems, summary = read_all(path)
    assert emails(subs) == [(2, "anna@example.org", "Anna Müller")]
    assert subs[0].fields == {"plz": "50667"}
    assert lines(problems) == [(3, "invalid")]
    assert "SMTPUTF8" in problems[0].reason
    assert summary.notes == []


def test_german_excel_cp1252_semicolons(tmp_path: Path) -> None:
    path = write_text(tmp_path / "liste.csv", GERMAN, encoding="cp1252")
    subs, problems, summary = read_all(path)
    assert emails(subs) == [
        (2, "anna.mueller@example.org", "Anna Müller"),
        (4, "peter@example.org", "Peter Schmidt; Sohn"),
    ]
    assert subs[0].fields == {"vorname": "Anna", "nachname": "Müller", "ort": "Köln"}
    assert lines(problems) == [(3, "invalid")]  # non-ASCII local part
    assert summary.notes == [
        f"{path}: not UTF-8: read as Windows-1252 (as Excel writes it on "
        "Windows); set `encoding:` to override"
    ]


def test_explicit_encoding_overrides_detection(tmp_path: Path) -> None:
    path = write_text(tmp_path / "liste.csv", GERMAN, encoding="cp1252")
    subs, _, summary = read_all(ListSource(path=path, encoding="latin-1"))
    assert subs[0].name == "Anna Müller"
    assert summary.notes == []


def test_pipe_delimiter_and_cr_only_line_ends(tmp_path: Path) -> None:
    path = write_text(tmp_path / "mac.txt", "email|name\ra@example.org|A\r\rb@example.org|B\r")
    subs, problems, _ = read_all(path)
    assert emails(subs) == [(2, "a@example.org", "A"), (4, "b@example.org", "B")]
    assert problems == []


def test_quoted_newlines_are_one_row_and_rows_stay_spreadsheet_rows(tmp_path: Path) -> None:
    path = write_text(
        tmp_path / "a.csv",
        'email,name,notes\r\na@example.org,A,"line one\r\nline two, with comma"\r\n'
        'broken,B,x\r\nc@example.org,C,""\r\n',
    )
    subs, problems, _ = read_all(path)
    assert emails(subs) == [(2, "a@example.org", "A"), (4, "c@example.org", "C")]
    assert subs[0].fields == {"notes": "line one line two, with comma"}
    assert [(p.line, p.reason) for p in problems] == [
        (3, "invalid address 'broken': An email address must have an @-sign.")
    ]


def test_blank_lines_trailing_empty_columns_title_and_notes_above_header(tmp_path: Path) -> None:
    path = write_text(
        tmp_path / "export.csv",
        "Newsletter-Liste Stand 1.3.2024,,,,\n"
        "Bitte nicht weitergeben,,,,\n"
        ",,,,\n"
        "Name,E-Mail-Adresse,Stadt,,\n"
        "Anna,anna@example.org,Berlin,,\n"
        ",,,,\n"
        "\n"
        "Bob,bob@example.org,Köln,,\n",
    )
    subs, problems, summary = read_all(path)
    assert emails(subs) == [(5, "anna@example.org", "Anna"), (8, "bob@example.org", "Bob")]
    assert subs[0].fields == {"stadt": "Berlin"}
    assert problems == []
    assert summary.notes == [f"{path}: header found on row 4; the rows above it are ignored"]


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("Email Address,First Name,Last Name", "Ada", "Lovelace"),
        ("E-MAIL ,Vorname,Nachname", "Ada", "Lovelace"),
        (" mail , first_name , LAST NAME ", "Ada", "Lovelace"),
    ],
)
def test_common_header_names_in_english_and_german(
    tmp_path: Path, header: str, first: str, last: str
) -> None:
    path = write_text(tmp_path / "a.csv", f"{header}\nada@example.org,{first},{last}\n")
    subs, _, _ = read_all(path)
    assert emails(subs) == [(2, "ada@example.org", "Ada Lovelace")]


def test_other_columns_become_safe_identifiers(tmp_path: Path) -> None:
    path = write_text(
        tmp_path / "a.csv",
        "email,Post-Leitzahl,Straße & Nr.,2. Wahl,Post Leitzahl,{{x}}\na@example.org,1,2,3,4,5\n",
    )
    subs, _, _ = read_all(path)
    assert subs[0].fields == {
        "post_leitzahl": "1",
        "strasse_nr": "2",
        "col_2_wahl": "3",
        "post_leitzahl_2": "4",
        "x": "5",
    }


def test_unsubscribed_column_truthy_values_skip_the_row(tmp_path: Path) -> None:
    rows = "".join(
        f"p{i}@example.org,{mark}\n"
        for i, mark in enumerate(["", "0", "nein", "false", "ja", "x", "TRUE", "2024-03-01"])
    )
    path = write_text(tmp_path / "a.csv", "email,Abgemeldet\n" + rows)
    subs, problems, summary = read_all(path)
    assert [s.email for s in subs] == [f"p{i}@example.org" for i in range(4)]
    assert lines(problems) == [
        (6, "unsubscribed"),
        (7, "unsubscribed"),
        (8, "unsubscribed"),
        (9, "unsubscribed"),
    ]
    assert summary.unsubscribed == 4
    assert summary.sendable == 4


def test_unsubscribed_mark_later_in_the_list_wins_over_an_earlier_row(tmp_path: Path) -> None:
    path = write_text(
        tmp_path / "a.csv",
        "email,unsubscribed\nann@example.org,\nbob@example.org,\nANN@example.org,yes\n",
    )
    _, problems, summary = read_all(path)
    assert [(p.line, p.kind) for p in problems] == [(4, "unsubscribed")]
    assert "line 2 has the same address and is not mailed either" in problems[0].reason
    assert summary.sendable == 1
    assert summary.unsubscribed == 1
    from kzmail.lists.checker import ListChecker

    with ListChecker([ListSource(path=path)]) as checker:
        checker.check()  # what `send` does first
        assert [s.email for s in checker.subscribers()] == ["bob@example.org"]


def test_addresses_cleaned_split_and_internationalised(tmp_path: Path) -> None:
    path = write_text(
        tmp_path / "a.csv",
        "email,name\n"
        "  mailto:Anna@Example.ORG  ,\n"
        '"Bob Builder <bob@example.org>",\n'
        '"Carla <carla@example.org>",Carla C.\n'
        "dora@bücher.example,Dora\n"
        "MAILTO:eve@example.org?subject=hi,Eve\n",
    )
    subs, problems, _ = read_all(path)
    assert emails(subs) == [
        (2, "Anna@example.org", ""),
        (3, "bob@example.org", "Bob Builder"),
        (4, "carla@example.org", "Carla C."),
        (5, "dora@xn--bcher-kva.example", "Dora"),
        (6, "eve@example.org", "Eve"),
    ]
    assert problems == []


def test_duplicates_case_insensitive_first_row_wins_with_both_rows(tmp_path: Path) -> None:
    path = write_text(
        tmp_path / "a.csv",
        "email,name\nann@example.org,First\nbob@example.org,B\nANN@EXAMPLE.ORG,Second\n",
    )
    subs, problems, summary = read_all(path)
    assert emails(subs) == [(2, "ann@example.org", "First"), (3, "bob@example.org", "B")]
    assert [(p.line, p.reason) for p in problems] == [(4, "duplicate of line 2: ANN@example.org")]
    assert (summary.rows, summary.valid, summary.duplicates, summary.sendable) == (3, 3, 1, 2)


def test_several_lists_merged_duplicates_across_files(tmp_path: Path) -> None:
    one = write_text(tmp_path / "one.csv", "email\na@example.org\nb@example.org\n")
    two = write_xlsx(
        tmp_path / "two.xlsx", {"S": [["E-Mail"], ["c@example.org"], ["B@example.org"]]}
    )
    subs, problems, _ = read_all(one, two)
    assert [s.email for s in subs] == ["a@example.org", "b@example.org", "c@example.org"]
    assert [(p.file, p.line, p.reason) for p in problems] == [
        (str(two), 3, f"duplicate of {one}:3: B@example.org")
    ]


def test_ambiguous_delimiter_says_what_was_chosen_and_how_to_override(tmp_path: Path) -> None:
    path = write_text(tmp_path / "a.csv", "email;name,x\na@example.org;A,1\nb@example.org;B,2\n")
    subs, _, summary = read_all(path)
    assert summary.notes == [
        f"{path}: delimiter ',' chosen (also plausible: ';'); set `delimiter:` to override"
    ]
    assert subs == []  # 'email;name' is no email header: the user must choose
    subs, problems, summary = read_all(ListSource(path=path, delimiter=";"))
    assert emails(subs) == [(2, "a@example.org", ""), (3, "b@example.org", "")]
    assert [s.fields for s in subs] == [{"name_x": "A,1"}, {"name_x": "B,2"}]
    assert problems == []
    assert summary.notes == []


def test_explicit_column_mapping_overrides_detection(tmp_path: Path) -> None:
    path = write_text(tmp_path / "a.csv", "Kontakt,email,Wer\na@example.org,not-this,Ann\n")
    source = ListSource(path=path, columns=ListColumns(email="Kontakt", name="Wer"))
    subs, problems, _ = read_all(source)
    assert emails(subs) == [(2, "a@example.org", "Ann")]
    assert subs[0].fields == {"email_2": "not-this"}
    assert problems == []


def test_no_email_column_is_an_error_naming_file_and_row(tmp_path: Path) -> None:
    path = write_text(tmp_path / "a.csv", "Titel\n\nname,telefon\nAnn,123\n")
    _, _, summary = read_all(path)
    assert [str(e) for e in summary.errors] == [
        f"{path}:1: no email column: expected a header such as 'email', 'E-Mail' or "
        "'E-Mail-Adresse' (or name it with `columns: {email: ...}`)"
    ]
    with pytest.raises(SubscriberListError):
        read_all_strict(path)


def test_a_list_without_header_row_says_so(tmp_path: Path) -> None:
    path = write_text(tmp_path / "a.csv", "anna@example.org,Anna\nbob@example.org,Bob\n")
    _, _, summary = read_all(path)
    assert [str(e) for e in summary.errors] == [
        f"{path}:1: no header row: add one above the first address (e.g. 'email,name')"
    ]


def read_all_strict(path: Path) -> None:
    from kzmail.lists.checker import ListChecker

    with ListChecker([ListSource(path=path)]) as checker:
        list(checker.subscribers())


def test_xlsx_title_row_numbers_dates_and_second_sheet(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "liste.xlsx",
        {
            "Abonnenten": [
                ["Newsletter 2024"],
                [],
                ["E-Mail", "Name", "PLZ", "Seit"],
                ["anna@example.org", "Müller, Anna", 10115, dt.date(2024, 3, 1)],
                ["kaputt", "X", 1, ""],
                [],
                ["bob@example.org", "Bob", 1.5, ""],
            ],
            "Notizen": [["nothing here"]],
        },
    )
    subs, problems, summary = read_all(path)
    assert emails(subs) == [(4, "anna@example.org", "Müller, Anna"), (7, "bob@example.org", "Bob")]
    assert subs[0].fields == {"plz": "10115", "seit": "2024-03-01"}
    assert subs[1].fields == {"plz": "1.5", "seit": ""}
    assert lines(problems) == [(5, "invalid")]
    assert summary.notes == [
        f"{path}: read the first sheet 'Abonnenten' of 2; set `sheet:` to choose another",
        f"{path}: header found on row 3; the rows above it are ignored",
    ]
    subs, _, _ = read_all(ListSource(path=path, sheet="Notizen"))
    assert subs == []


def test_xls_written_by_xlwt(tmp_path: Path) -> None:
    path = write_xls(
        tmp_path / "alt.xls",
        [
            ["Mail", "Vorname", "Nachname"],
            ["ayse@example.net", "Ayşe", "Yılmaz"],
            ["AYSE@example.net", "Dup", "X"],
        ],
    )
    subs, problems, _ = read_all(path)
    assert emails(subs) == [(2, "ayse@example.net", "Ayşe Yılmaz")]
    assert [(p.line, p.kind) for p in problems] == [(3, "duplicate")]


def test_ods_written_by_odfpy(tmp_path: Path) -> None:
    path = write_ods(
        tmp_path / "libre.ods",
        [
            ["Name", "Email"],
            ["Olga Petrowa", "olga@example.com"],
            ["Zahl", 42],
            ["Lena", "lena@example.com"],
        ],
    )
    subs, problems, _ = read_all(path)
    assert emails(subs) == [
        (2, "olga@example.com", "Olga Petrowa"),
        (4, "lena@example.com", "Lena"),
    ]
    assert [(p.line, p.reason) for p in problems] == [
        (3, "invalid address '42': An email address must have an @-sign.")
    ]


def test_tsv_file(tmp_path: Path) -> None:
    path = write_text(tmp_path / "a.tsv", "email\tname\ta@example.org\tA\n".replace("\ta@", "\na@"))
    subs, _, _ = read_all(path)
    assert emails(subs) == [(2, "a@example.org", "A")]


def test_non_utf8_after_the_sample_names_the_row_and_the_fix(tmp_path: Path) -> None:
    rows = "".join(f"p{i}@example.org,Name {i}\n" for i in range(3000))
    path = tmp_path / "late.csv"
    path.write_bytes(("email,name\n" + rows).encode() + "z@example.org,Weiß\n".encode("cp1252"))
    _, _, summary = read_all(path)
    assert [str(e) for e in summary.errors] == [
        f"{path}:3002: not utf-8 text in this row; set `encoding:` for this list (e.g. cp1252)"
    ]
    assert summary.rows == 3000
    assert summary.sendable == 3000


def test_utf16_without_bom(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes("email;name\r\na@example.org;Änne\r\n".encode("utf-16-le"))
    subs, _, summary = read_all(path)
    assert emails(subs) == [(2, "a@example.org", "Änne")]
    assert summary.notes == [
        f"{path}: read as UTF-16 little-endian text (no byte-order mark); "
        "set `encoding:` to override"
    ]

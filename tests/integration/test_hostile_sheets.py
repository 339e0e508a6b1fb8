"""Hostile spreadsheets end in one line, within seconds and well under 500 MB.

Each file is made here by a small generator. `kzmail check` runs as a child process and
its time and peak RSS are what the kernel measured of it (os.wait4). Before the sheet guard,
these files aborted the process inside calamine (512 GiB asked for), took gigabytes, or
ran for minutes.
"""

from __future__ import annotations

import re
import struct
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from openpyxl import Workbook

from tests.helpers.campaigns import edit_campaign
from tests.helpers.child import ChildRun, run_measured
from tests.helpers.lists import write_ods, write_xlsx

KZMAIL = Path(sys.executable).with_name("kzmail")
MB = 1024 * 1024


def _check(project: Path, list_file: Path) -> ChildRun:
    campaign = project / "campaigns/kasachstan.yaml"
    edit_campaign(
        campaign,
        lambda text: text.replace(
            "subscribers: ../subscribers.example.csv", f"subscribers: ../{list_file.name}"
        ),
    )
    return run_measured([str(KZMAIL), "check", str(campaign)], cwd=project, timeout=60)


def _refused(run: ChildRun, list_file: Path, *words: str) -> str:
    assert not run.killed, "still running after 60 s"
    assert run.returncode in (1, 2), (run.returncode, run.stderr[-2000:])
    assert "Traceback" not in run.stderr and "panicked" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr[-2000:]
    assert lines[0].startswith(f"error: {list_file}: "), lines[0]
    for word in words:
        assert word in lines[0], lines[0]
    assert run.seconds < 10, run.seconds
    assert run.peak_rss_mb < 500, run.peak_rss_mb
    return lines[0]


def _far_cell_xlsx(path: Path, cell: str) -> Path:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet["A1"] = "email"
    sheet["A2"] = "a@example.org"
    sheet[cell] = "x"
    book.save(path)
    return path


@pytest.mark.parametrize("cell", ["XFD1048576", "CV1048576"])
def test_one_far_cell_is_refused_and_named(project: Path, cell: str) -> None:
    hostile = _far_cell_xlsx(project / "far.xlsx", cell)
    assert hostile.stat().st_size < 10_000
    line = _refused(_check(project, hostile), hostile, f"farthest cell {cell}", "3,000,000 cells")
    assert "1,048,576 rows" in line


def _rewrite(source: Path, target: Path, member: str, change: Callable[[bytes], bytes]) -> Path:
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as new:
        for info in old.infolist():
            data = old.read(info.filename)
            new.writestr(info.filename, change(data) if info.filename == member else data)
    return target


def _sheet_bomb(path: Path, row: bytes, size: int) -> Path:
    """An .xlsx whose sheet XML is `size` bytes of `row` repeated: tiny once deflated."""
    base = write_xlsx(path.with_suffix(".base.xlsx"), {"Liste": [["email"], ["a@example.org"]]})
    chunk = row * (MB // len(row))
    with zipfile.ZipFile(base) as old, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as new:
        for info in old.infolist():
            data = old.read(info.filename)
            if info.filename != "xl/worksheets/sheet1.xml":
                new.writestr(info.filename, data)
                continue
            head, tail = data.split(b"</sheetData>")
            with new.open(info.filename, "w", force_zip64=True) as out:
                out.write(head)
                for _ in range(size // len(chunk)):
                    out.write(chunk)
                out.write(b"</sheetData>" + tail)
    base.unlink()
    return path


def test_a_zip_bomb_is_refused_by_what_it_unpacks_to(project: Path) -> None:
    row = b'<row><c t="inlineStr"><is><t>' + b"x" * 900 + b"</t></is></c></row>"
    hostile = _sheet_bomb(project / "bomb.xlsx", row, 600 * MB)
    assert hostile.stat().st_size < 4 * MB
    _refused(_check(project, hostile), hostile, "unpacks to more than 64 MB")


def _forge_sizes(path: Path, member: str, size: int) -> None:
    """Make the archive's directory and local header declare `size` bytes for `member`."""
    data = bytearray(path.read_bytes())
    name = member.encode()
    for signature, field in ((b"PK\x01\x02", 24), (b"PK\x03\x04", 22)):
        for match in re.finditer(re.escape(signature), bytes(data)):
            start = match.start()
            offset = 46 if signature == b"PK\x01\x02" else 30
            if data[start + offset : start + offset + len(name)] == name:
                struct.pack_into("<I", data, start + field, size)
    path.write_bytes(bytes(data))


def test_a_bomb_that_lies_about_its_size_is_measured_not_trusted(project: Path) -> None:
    row = b'<row><c t="inlineStr"><is><t>' + b"y" * 900 + b"</t></is></c></row>"
    base = write_xlsx(project / "base.xlsx", {"Liste": [["email"], ["a@example.org"]]})
    hostile = _rewrite(
        base,
        project / "liar.xlsx",
        "xl/worksheets/sheet1.xml",
        lambda xml: xml.replace(b"</sheetData>", row * 200_000 + b"</sheetData>"),
    )
    _forge_sizes(hostile, "xl/worksheets/sheet1.xml", 4096)
    with zipfile.ZipFile(hostile) as archive:
        assert archive.getinfo("xl/worksheets/sheet1.xml").file_size == 4096
    _refused(_check(project, hostile), hostile, "unpacks to more than 64 MB")


def test_one_huge_cell_is_refused(project: Path) -> None:
    base = write_xlsx(project / "base.xlsx", {"Liste": [["email", "name"], ["a@example.org", "A"]]})
    hostile = _rewrite(
        base,
        project / "cell.xlsx",
        "xl/worksheets/sheet1.xml",
        lambda xml: xml.replace(
            b"</sheetData>",
            b'<row r="3"><c r="B3" '
            b't="inlineStr"><is><t>' + b"z" * (200 * MB) + b"</t></is></c></row></sheetData>",
        ),
    )
    _refused(_check(project, hostile), hostile, "a cell holds more than 1 MB of text")


def test_an_ods_cell_repeated_into_millions_is_refused(project: Path) -> None:
    base = write_ods(project / "base.ods", [["email", "name"], ["a@example.org", "A"]])
    hostile = _rewrite(
        base,
        project / "repeat.ods",
        "content.xml",
        lambda xml: xml.replace(
            b"</table:table>",
            b'<table:table-row table:number-rows-repeated="100000"><table:table-cell '
            b'table:number-columns-repeated="200" office:value-type="string"><text:p>x</text:p>'
            b"</table:table-cell></table:table-row></table:table>",
        ),
    )
    assert hostile.stat().st_size < 10_000
    _refused(_check(project, hostile), hostile, "sheet 'Liste' spans 100,002 rows x 200 columns")


def test_an_xls_cell_at_the_last_row_and_column_is_refused(project: Path) -> None:
    import xlwt

    book = xlwt.Workbook()
    sheet = book.add_sheet("Liste")
    sheet.write(0, 0, "email")
    sheet.write(1, 0, "a@example.org")
    sheet.write(65535, 255, "x")
    hostile = project / "far.xls"
    book.save(str(hostile))
    _refused(_check(project, hostile), hostile, "farthest cell IV65536")


def test_an_archive_of_thousands_of_parts_is_refused_before_its_directory_is_read(
    project: Path,
) -> None:
    hostile = write_xlsx(project / "parts.xlsx", {"Liste": [["email"], ["a@example.org"]]})
    with zipfile.ZipFile(hostile, "a") as archive:
        for number in range(6000):
            archive.writestr(f"customXml/item{number}.xml", b"")
    _refused(_check(project, hostile), hostile, "6,0", "parts")


def _reads(project: Path, list_file: Path) -> ChildRun:
    run = _check(project, list_file)
    assert "error:" not in run.stderr, run.stderr
    assert "a@example.org" not in run.stderr
    return run


def test_what_real_programs_write_is_still_read(project: Path) -> None:
    """A stray <dimension>, cells without r=, LibreOffice's repeated empty rows: all fine."""
    base = write_xlsx(project / "base.xlsx", {"Liste": [["email"], ["a@example.org"]]})
    wide = _rewrite(
        base,
        project / "dimension.xlsx",
        "xl/worksheets/sheet1.xml",
        lambda xml: re.sub(rb'<dimension ref="[^"]*"/>', b'<dimension ref="A1:XFD1048576"/>', xml),
    )
    bare = _rewrite(
        base,
        project / "bare.xlsx",
        "xl/worksheets/sheet1.xml",
        lambda xml: re.sub(rb' r="[A-Z]*[0-9]+"', b"", xml),
    )
    ods = write_ods(project / "base.ods", [["email"], ["a@example.org"]])
    trailing = _rewrite(
        ods,
        project / "trailing.ods",
        "content.xml",
        lambda xml: xml.replace(
            b"</table:table>",
            b'<table:table-row table:number-rows-repeated="1048574"><table:table-cell '
            b'table:number-columns-repeated="16384"/></table:table-row></table:table>',
        ).replace(
            b"</text:p></table:table-cell></table:table-row>",
            b'</text:p></table:table-cell><table:table-cell table:number-columns-repeated="16383"/>'
            b"</table:table-row>",
        ),
    )
    for good in (wide, bare, trailing):
        run = _reads(project, good)
        assert run.returncode == 0, (good.name, run.stdout, run.stderr)
        assert "1 row: 1 valid" in run.stdout, run.stdout


def test_cells_that_hide_where_they_are_are_placed_as_calamine_places_them(project: Path) -> None:
    """No `r=` on the cells (each one right of the last), a decoy `r` in a quoted value, a
    namespace prefix: the far extent is still found."""
    cells = b"".join(
        b'<x:c x=\'r="A1"\' t="inlineStr"><x:is><x:t>v</x:t></x:is></x:c>' for _ in range(40)
    )
    base = write_xlsx(project / "base.xlsx", {"Liste": [["email"], ["a@example.org"]]})
    hostile = _rewrite(
        base,
        project / "hidden.xlsx",
        "xl/worksheets/sheet1.xml",
        lambda xml: xml.replace(
            b"<worksheet ",
            b'<worksheet xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main" ',
        ).replace(b"</sheetData>", b'<x:row r="100000">' + cells + b"</x:row></sheetData>"),
    )
    line = _refused(_check(project, hostile), hostile, "100,000 rows x 40 columns")
    assert "AN100000" in line

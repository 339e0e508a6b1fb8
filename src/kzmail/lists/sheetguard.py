"""Refuse hostile spreadsheets before calamine reads them.

calamine allocates the whole box from A1 to the farthest cell (about 32 bytes per cell, and
a 4.7 KB file with one cell at XFD1048576 asks for 512 GiB and aborts the process), trusts
the sizes in a zip archive, and expands an `.ods` cell repeated a million times. So before
a spreadsheet is opened, `check_sheet_file` measures what reading it would cost:

- the file itself is at most `MAX_FILE` bytes;
- an `.xlsx`/`.ods` archive has at most `MAX_MEMBERS` members, and each member is
  decompressed here (not trusting the sizes the archive declares) up to `MAX_MEMBER`
  bytes, at most `MAX_TOTAL` in all;
- while decompressing, the sheet XML is scanned for its real extent (`<row r=>`, `<c r=>`,
  `.ods` `number-rows-repeated`/`number-columns-repeated` on cells that hold something),
  and no run of text between two tags is longer than `MAX_TEXT` bytes;
- an `.xls` file's extent is read with xlrd (rows kept ragged, so it costs what the file
  holds).

The box from A1 to the farthest cell may hold at most `MAX_CELLS` cells. Each refusal is a
`SubscriberListError` naming the file and the limit. Everything here reads the file as a
stream: the check itself needs a few mb, whatever the file.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from kzmail.errors import SubscriberListError
from kzmail.lists.sheetscan import (
    MAX_CELLS,
    Extent,
    OdsContent,
    Scanner,
    XlsxSheet,
    mb,
    too_big,
)

if TYPE_CHECKING:
    import zipfile

MAX_FILE = 100 * 1024 * 1024
MAX_MEMBERS = 5_000
MAX_MEMBER = 64 * 1024 * 1024
MAX_TOTAL = 256 * 1024 * 1024
_CHUNK = 1024 * 1024

_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
_EOCD = struct.Struct("<4sHHHHIIH")
_EOCD_SEARCH = _EOCD.size + 65535  # the record plus the longest comment
MAX_DIRECTORY = 2 * 1024 * 1024


def check_sheet_file(path: Path) -> None:
    """Raise SubscriberListError if reading the spreadsheet at `path` could exhaust memory.

    A file that cannot be measured (not a zip, damaged) is left to calamine, whose error
    is then reported as usual; a file that measures within the limits is read as before.
    """
    try:
        size = path.stat().st_size
    except OSError:
        return  # calamine reports the missing file
    if size > MAX_FILE:
        raise SubscriberListError(
            f"the spreadsheet file is {mb(size)}; kzmail reads at most "
            f"{mb(MAX_FILE)} (export the list as CSV)",
            path=path,
        )
    suffix = path.suffix.lower()
    if suffix in {".xlsx", ".xlsm"}:
        _check_archive(path, "xlsx")
    elif suffix == ".ods":
        _check_archive(path, "ods")
    elif suffix == ".xls":
        _check_xls(path)


# ---- zip archives (.xlsx, .ods) -------------------------------------------------------------
def _check_archive(path: Path, kind: str) -> None:
    import zipfile

    _check_directory(path)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError):
        return
    with archive, path.open("rb") as raw:
        total = 0
        for member in archive.infolist():
            scanner = _scanner(path, member.filename, kind)
            for chunk in _inflate(raw, member, path):
                total += len(chunk)
                if total > MAX_TOTAL:
                    raise SubscriberListError(
                        f"the spreadsheet unpacks to more than {mb(MAX_TOTAL)}; kzmail reads "
                        "at most that much (a zip bomb, or export the list as CSV)",
                        path=path,
                    )
                scanner.feed(chunk)
            scanner.close()


def _check_directory(path: Path) -> None:
    """Refuse an archive whose directory alone would be costly to read (millions of parts).

    Read from the end-of-directory record, before `zipfile` builds an object per part.
    """
    with path.open("rb") as handle:
        handle.seek(0, 2)
        size = handle.tell()
        handle.seek(max(0, size - _EOCD_SEARCH))
        tail = handle.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < _EOCD.size:
        return  # not a zip: calamine will say so
    entries, directory_size = _EOCD.unpack_from(tail, at)[4:6]
    if entries == 0xFFFF or directory_size == 0xFFFFFFFF:
        raise SubscriberListError(
            "the spreadsheet archive has a zip64 directory, which no spreadsheet this size needs",
            path=path,
        )
    if entries > MAX_MEMBERS or directory_size > MAX_DIRECTORY:
        raise SubscriberListError(
            f"the spreadsheet archive has {entries:,} parts in a "
            f"{directory_size:,}-byte directory; kzmail reads at most "
            f"{MAX_MEMBERS:,} parts",
            path=path,
        )


def _scanner(path: Path, member: str, kind: str) -> Scanner:
    if kind == "ods" and member == "content.xml":
        return OdsContent(path)
    if kind == "xlsx" and member.startswith("xl/worksheets/") and member.endswith(".xml"):
        return XlsxSheet(path)
    return Scanner(path)


def _inflate(raw: BinaryIO, member: zipfile.ZipInfo, path: Path) -> Iterator[bytes]:
    """The member's real content in chunks, at most MAX_MEMBER bytes whatever it declares."""
    import zipfile

    raw.seek(member.header_offset)
    header = raw.read(_LOCAL_HEADER.size)
    if len(header) < _LOCAL_HEADER.size or header[:4] != b"PK\x03\x04":
        return  # damaged: calamine will say so
    name_length, extra_length = _LOCAL_HEADER.unpack(header)[9:11]
    raw.seek(member.header_offset + _LOCAL_HEADER.size + name_length + extra_length)
    if member.compress_type == zipfile.ZIP_STORED:
        inflater = None
    elif member.compress_type == zipfile.ZIP_DEFLATED:
        inflater = zlib.decompressobj(-15)
    else:
        raise SubscriberListError(
            f"the spreadsheet part {member.filename!r} is compressed in "
            "a way spreadsheet programs do not use",
            path=path,
        )
    left = member.compress_size
    produced = 0
    while left > 0:
        data = raw.read(min(_CHUNK, left))
        if not data:
            return
        left -= len(data)
        while data:
            if inflater is None:
                out, data = data, b""
            else:
                out = inflater.decompress(data, _CHUNK)
                data = inflater.unconsumed_tail
            produced += len(out)
            if produced > MAX_MEMBER:
                raise SubscriberListError(
                    f"the spreadsheet part {member.filename!r} unpacks to more than "
                    f"{mb(MAX_MEMBER)}; kzmail reads at most that much per part",
                    path=path,
                )
            if out:
                yield out
            if inflater is not None and inflater.eof:
                return


# ---- .xls (BIFF inside an OLE compound file) --------------------------------------------------


def _check_xls(path: Path) -> None:
    import xlrd

    try:
        book = xlrd.open_workbook(str(path), on_demand=True, ragged_rows=True, logfile=_Discard())
    except Exception:  # noqa: BLE001 - xlrd raises many kinds; calamine reports
        return
    try:
        for index, name in enumerate(book.sheet_names()):
            sheet = book.sheet_by_index(index)
            extent = Extent(
                sheet.nrows, max((sheet.row_len(r) for r in range(sheet.nrows)), default=0)
            )
            book.unload_sheet(index)
            if extent.cells > MAX_CELLS:
                raise too_big(path, extent, name)
    except SubscriberListError:
        raise
    except Exception:  # noqa: BLE001 - a damaged sheet: calamine reports it
        return
    finally:
        book.release_resources()


class _Discard:
    """A log file for xlrd that drops its warnings (they are not the organiser's concern)."""

    def write(self, text: str) -> int:
        return len(text)

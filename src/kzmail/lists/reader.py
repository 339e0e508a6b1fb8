"""Read the raw rows of a subscriber list file, whatever program exported it.

Text exports (`.csv`, `.tsv`, `.txt`): the encoding (BOM, UTF-8, UTF-16, Windows-1252) and
the delimiter (`,` `;` tab `|`) are detected from the first 64 KB; every choice that was
not certain is written into `RawList.notes` with the campaign key that overrides it.
Spreadsheets (`.xlsx`, `.xls`, `.ods`) are read with python-calamine. Either way the
result is a stream of `(row, cells)`: `row` is the number a person sees in their
spreadsheet (1-based; a quoted cell holding newlines is still one row), `cells` are strings.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from kzmail.errors import SubscriberListError
from kzmail.lists.sheetguard import check_sheet_file

SHEET_SUFFIXES = {".xlsx", ".xlsm", ".xls", ".ods"}
_SAMPLE = 64 * 1024
_DELIMITERS = (",", ";", "\t", "|")
_NAMES = {",": "','", ";": "';'", "\t": "tab", "|": "'|'"}
_BINARY = {
    b"PK\x03\x04": "a zipped file (an .xlsx or .ods spreadsheet?)",
    b"\xd0\xcf\x11\xe0": "an Office file (an .xls spreadsheet?)",
    b"%PDF": "a PDF document",
}

_UNDECODED = re.compile("[\udc80-\udcff]")

Row = tuple[int, list[str]]


@dataclass
class RawList:
    """The rows of one list file and what was decided while opening it."""

    path: Path
    rows: Iterator[Row]
    notes: list[str] = field(default_factory=list)
    encoding: str = ""
    delimiter: str = ""


def open_list(
    path: Path,
    *,
    encoding: str | None = None,
    delimiter: str | None = None,
    sheet: str | None = None,
) -> RawList:
    """Open `path` as a stream of rows; raise SubscriberListError if it cannot be read."""
    if path.suffix.lower() in SHEET_SUFFIXES:
        return _open_sheet(path, sheet)
    try:
        with path.open("rb") as handle:
            head = handle.read(_SAMPLE)
    except FileNotFoundError:
        raise SubscriberListError("subscriber list not found", path=path) from None
    except OSError as exc:
        raise SubscriberListError(
            f"cannot read subscriber list ({exc.strerror})", path=path
        ) from exc
    if not head.strip():
        raise SubscriberListError("the list is empty (no header row)", path=path, line=1)
    raw = RawList(path, iter(()))
    raw.encoding = encoding or _detect_encoding(head, path, raw.notes)
    text = _decode_sample(head, raw.encoding, path)
    raw.delimiter = delimiter or _detect_delimiter(text, raw.notes)
    raw.rows = _csv_rows(path, raw.encoding, raw.delimiter)
    return raw


def _detect_encoding(head: bytes, path: Path, notes: list[str]) -> str:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    for magic, what in _BINARY.items():
        if head.startswith(magic):
            raise SubscriberListError(
                f"this is {what}, not a text list; save it with its proper extension "
                "(.xlsx, .xls, .ods) or export it as CSV",
                path=path,
                line=1,
            )
    pairs = len(head) // 2 or 1
    even_nul = head[0::2].count(0) / pairs
    odd_nul = head[1::2].count(0) / pairs
    if odd_nul > 0.4 and even_nul < 0.05:
        notes.append(
            "read as UTF-16 little-endian text (no byte-order mark); set `encoding:` to override"
        )
        return "utf-16-le"
    if even_nul > 0.4 and odd_nul < 0.05:
        notes.append(
            "read as UTF-16 big-endian text (no byte-order mark); set `encoding:` to override"
        )
        return "utf-16-be"
    control = sum(head.count(bytes([c])) for c in (*range(0, 9), *range(14, 27), *range(28, 32)))
    if control > max(8, len(head) // 100):
        raise SubscriberListError(
            "this is not a text list (it holds binary data); export "
            "the list as CSV or give the spreadsheet file itself",
            path=path,
            line=1,
        )
    try:
        # A multi-byte character may be cut at the end of the sample: ignore only that.
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    if any(byte in head for byte in (0x81, 0x8D, 0x8F, 0x90, 0x9D)):
        notes.append("not UTF-8: read as Latin-1 (ISO-8859-1); set `encoding:` to override")
        return "latin-1"
    notes.append(
        "not UTF-8: read as Windows-1252 (as Excel writes it on Windows); "
        "set `encoding:` to override"
    )
    return "cp1252"


def _decode_sample(head: bytes, encoding: str, path: Path) -> str:
    try:
        return codecs.getincrementaldecoder(encoding)(errors="strict").decode(head, final=False)
    except UnicodeDecodeError as exc:
        raise SubscriberListError(
            f"not {encoding} text ({exc.reason}); set `encoding:` for this list", path=path
        ) from exc


def _record_counts(text: str, delimiters: tuple[str, ...]) -> list[dict[str, int]]:
    """Per record of the sample, how often each candidate occurs outside quotes."""
    records: list[dict[str, int]] = []
    counts = dict.fromkeys(delimiters, 0)
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in "\r\n":
            records.append(counts)  # blank records are dropped by the caller
            counts = dict.fromkeys(delimiters, 0)
        elif not quoted and char in counts:
            counts[char] += 1
    if any(counts.values()):
        records.append(counts)
    return records[:200]


def _detect_delimiter(text: str, notes: list[str]) -> str:
    records = [r for r in _record_counts(text, _DELIMITERS) if any(r.values())]
    if not records:
        return ","  # one column: the delimiter does not matter
    scores: dict[str, tuple[float, int]] = {}
    for delim in _DELIMITERS:
        per_record = [r[delim] for r in records]
        mode = max(set(per_record), key=per_record.count)
        if mode > 0:
            scores[delim] = (per_record.count(mode) / len(per_record), mode)
    if not scores:
        return ","
    ranked = sorted(scores, key=lambda d: scores[d], reverse=True)
    best = ranked[0]
    if len(ranked) > 1 and scores[ranked[1]][0] >= 0.9 and scores[best][0] >= 0.9:
        others = ", ".join(_NAMES[d] for d in ranked[1:])
        notes.append(
            f"delimiter {_NAMES[best]} chosen (also plausible: {others}); "
            "set `delimiter:` to override"
        )
    return best


def _csv_rows(path: Path, encoding: str, delimiter: str) -> Iterator[Row]:
    row = 0
    # Undecodable bytes become lone surrogates, so the error can name the very row they are
    # in (a strict decoder fails a whole 8 KB chunk ahead of the row being parsed).
    utf8 = codecs.lookup(encoding).name in {"utf-8", "utf-8-sig"}
    try:
        with path.open(
            encoding=encoding, newline="", errors="surrogateescape" if utf8 else "strict"
        ) as handle:
            reader = csv.reader(
                handle,
                delimiter=delimiter,
                quotechar='"',
                doublequote=True,
                skipinitialspace=False,
                strict=False,
            )
            for cells in reader:
                row += 1
                if utf8 and _UNDECODED.search("\x1f".join(cells)):
                    raise SubscriberListError(
                        f"not {encoding} text in this row; set `encoding:` for this list "
                        "(e.g. cp1252)",
                        path=path,
                        line=row,
                    )
                yield row, cells
    except csv.Error as exc:
        reason = str(exc)
        if "field larger than field limit" in reason:
            reason = (
                f"a cell is longer than {csv.field_size_limit():,} characters: "
                "a quote that is never closed, or not a subscriber list"
            )
        raise SubscriberListError(reason, path=path, line=row + 1) from exc
    except UnicodeDecodeError as exc:
        raise SubscriberListError(
            f"not {encoding} text here ({exc.reason}); set `encoding:` for this list (e.g. cp1252)",
            path=path,
            line=row + 1,
        ) from exc
    except OSError as exc:
        raise SubscriberListError(
            f"cannot read subscriber list ({exc.strerror})", path=path, line=row + 1
        ) from exc


def _cell(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return "" if value is None else str(value)


def _open_sheet(path: Path, sheet: str | None) -> RawList:
    from python_calamine import CalamineError, CalamineWorkbook

    check_sheet_file(path)
    notes: list[str] = []
    try:
        book = CalamineWorkbook.from_path(str(path))
        names = book.sheet_names
        if sheet is not None and sheet not in names:
            raise SubscriberListError(
                f"no sheet named {sheet!r} (sheets: {', '.join(names)})", path=path
            )
        if not names:
            raise SubscriberListError("the spreadsheet has no sheets", path=path)
        chosen = sheet or names[0]
        if sheet is None and len(names) > 1:
            notes.append(
                f"read the first sheet {chosen!r} of {len(names)}; set `sheet:` to choose another"
            )
        data = book.get_sheet_by_name(chosen)
    except FileNotFoundError:
        raise SubscriberListError("subscriber list not found", path=path) from None
    except (CalamineError, OSError, ValueError) as exc:
        raise SubscriberListError(f"cannot read this spreadsheet ({exc})", path=path) from exc
    if data.height == 0:
        raise SubscriberListError("the list is empty (no header row)", path=path, line=1)

    def rows() -> Iterator[Row]:
        for number, cells in enumerate(data.iter_rows(), 1):
            yield number, [_cell(value) for value in cells]

    return RawList(path, rows(), notes, encoding="", delimiter="")

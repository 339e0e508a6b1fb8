"""Scan a spreadsheet's XML as a stream for what reading it would cost.

Fed one archive member chunk by chunk, a `Scanner` checks that no run of text is longer
than `MAX_TEXT`; `XlsxSheet` and `OdsContent` also track the box from A1 to the farthest
cell (`.xlsx` `<row r>`/`<c r>` or cells placed one after another; `.ods` repeats counted
only on cells that hold something) and raise `too_big` past `MAX_CELLS`. Where every tag
says where it is, they count with a few passes of C code instead of tag by tag.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path

from kzmail.errors import SubscriberListError

MAX_TEXT = 1024 * 1024


MAX_CELLS = 3_000_000


_LONG_TEXT = re.compile(rb"(?:\A|<)[^<]{%d}" % (MAX_TEXT + 1))  # tried only at run starts


_XLSX_TAG = re.compile(rb"<(?:\w+:)?(row|c)(?=[\s/>])([^>]*)>")


_REF = re.compile(rb"""\sr\s*=\s*["']([A-Z]{0,3})(\d{0,9})["']""")


_FAST_ROW = re.compile(rb'<row r="(\d{1,9})"')


_FAST_CELL_ROW = re.compile(rb'<c r="[A-Z]{1,3}(\d{1,9})"')


_FAST_CELL_COLUMN = re.compile(rb'<c r="([A-Z]{1,3})')


_OPENINGS = {
    name: re.compile(b"<" + name + rb"[\s/>]")
    for name in (b"row", b"c", b"table:table-row", b"table:table-cell", b"table:covered-table-cell")
}


_ODS_TAG = re.compile(
    rb"<(/?)(?:\w+:)?(table-row|table-cell|covered-table-cell|table)(?=[\s/>])([^>]*?)(/?)>"
)


_REPEATED = re.compile(rb'number-(?:rows|columns)-repeated="(\d{1,9})"')


_ODS_NAME = re.compile(rb'\bname="([^"]{0,200})"')


@dataclass
class Extent:
    """The box from A1 to the farthest cell of one sheet, and where that cell is."""

    rows: int = 0
    columns: int = 0

    @property
    def cells(self) -> int:
        return self.rows * self.columns

    def extend(self, row: int, column: int) -> None:
        self.rows = max(self.rows, row)
        self.columns = max(self.columns, column)


def mb(size: int) -> str:
    return f"{size / (1024 * 1024):,.0f} MB"


def too_big(path: Path, extent: Extent, sheet: str) -> SubscriberListError:
    where = f"sheet {sheet!r} " if sheet else "a sheet "
    return SubscriberListError(
        f"{where}spans {extent.rows:,} rows x {extent.columns:,} columns "
        f"({extent.cells:,} cells) from A1 to its farthest cell {_cell_name(extent)}; kzmail "
        f"reads at most {MAX_CELLS:,} cells: delete what lies beyond the list, or export it "
        "as CSV",
        path=path,
    )


def _cell_name(extent: Extent) -> str:
    letters, number = "", extent.columns
    while number:
        number, rest = divmod(number - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return f"{letters}{extent.rows}"


class Scanner:
    """Fed one archive member chunk by chunk: checks text runs; subclasses read tags."""

    pattern = re.compile(rb"(?!)")  # matches nothing

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pending = b""

    def feed(self, chunk: bytes) -> None:
        data = self.pending + chunk
        if _LONG_TEXT.search(data):
            raise SubscriberListError(
                f"a cell holds more than {mb(MAX_TEXT)} of text; not a subscriber list",
                path=self.path,
            )
        cut = data.rfind(b"<")
        if cut < 0:
            self.pending = data
            return
        self.scan(data, cut)
        self.pending = data[cut:]

    def scan(self, data: bytes, end: int) -> None:
        """Every tag in `data[:end]`, which ends just before a tag starts."""
        for match in self.pattern.finditer(data, 0, end):
            self.tag(match)

    def close(self) -> None:
        for match in self.pattern.finditer(self.pending):
            self.tag(match)
        self.pending = b""
        self.finish()

    def tag(self, match: re.Match[bytes]) -> None:
        """One tag the pattern matched."""

    def finish(self) -> None:
        """The member has ended."""


class XlsxSheet(Scanner):
    """One `xl/worksheets/*.xml`: rows and cells with or without their `r=` reference."""

    pattern = _XLSX_TAG

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.extent = Extent()
        self.row = 0
        self.column = 0

    def scan(self, data: bytes, end: int) -> None:
        """Where every row and cell starts `<row r="..."`/`<c r="..."` (as the programs that
        write spreadsheets do), count with a few passes of C code; otherwise tag by tag.

        `<` cannot occur in XML text or attribute values, so these matches are tags.
        """
        rows = _FAST_ROW.findall(data, 0, end)
        cells = _FAST_CELL_ROW.findall(data, 0, end)
        if (
            data.find(b":c", 0, end) >= 0
            or data.find(b":row", 0, end) >= 0  # prefixed
            or len(rows) != _count(data, end, b"row")
            or len(cells) != _count(data, end, b"c")
        ):
            super().scan(data, end)
            return
        if rows or cells:
            self.row = max(
                self.row, max(map(int, rows), default=0), max(map(int, cells), default=0)
            )
        columns = set(_FAST_CELL_COLUMN.findall(data, 0, end))
        if columns:
            self.column = max(_column_number(letters) for letters in columns)
        self.extent.extend(self.row, self.column)

    def tag(self, match: re.Match[bytes]) -> None:
        # Conservative: a cell is at least one right of the one before it (calamine places
        # a cell without `r=` there), and at the farthest of any `r=` its tag holds.
        kind, refs = match.group(1), _REF.findall(match.group(2))
        if kind == b"row":
            self.row = max([self.row + 1, *(int(number) for _, number in refs if number)])
            self.column = 0
            return
        self.column = max([self.column + 1, *(_column_number(col) for col, _ in refs if col)])
        self.row = max([self.row, *(int(number) for _, number in refs if number)])
        self.extent.extend(max(self.row, 1), self.column)

    def finish(self) -> None:
        if self.extent.cells > MAX_CELLS:
            raise too_big(self.path, self.extent, "")


def _count(data: bytes, end: int, tag: bytes) -> int:
    return len(_OPENINGS[tag].findall(data, 0, end))


def _column_number(letters: bytes) -> int:
    number = 0
    for letter in letters:
        number = number * 26 + letter - 64
    return number


class OdsContent(Scanner):
    """`content.xml`: every table, counting repeats only on cells that hold something."""

    pattern = _ODS_TAG

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.name = ""
        self.extent = Extent()
        self.row = 0
        self.row_repeat = 1
        self.column = 0
        self.row_columns = 0

    def tag(self, match: re.Match[bytes]) -> None:
        closing, kind, attributes, empty = match.groups()
        if kind == b"table":
            if closing:
                self.finish()
            else:
                named = _ODS_NAME.search(attributes)
                self.name = named.group(1).decode("utf-8", "replace") if named else ""
                self.extent, self.row = Extent(), 0
        elif kind == b"table-row":
            if not closing:
                self.row_repeat, self.column, self.row_columns = _repeat(attributes), 0, 0
            if closing or empty:
                self._end_row()
        elif not closing:
            repeat = _repeat(attributes)
            if not empty or b"value-type=" in attributes:
                self.row_columns = self.column + repeat
            self.column += repeat

    def scan(self, data: bytes, end: int) -> None:
        """Without repeats, prefixes other than `table:` or a new table in this stretch,
        count cells per row with C code; otherwise tag by tag."""
        cells = _count(data, end, b"table:table-cell") + _count(
            data, end, b"table:covered-table-cell"
        )
        if (
            data.find(b"repeated=", 0, end) >= 0
            or data.find(b"<table:table ", 0, end) >= 0
            or data.count(b"table-row", 0, end)
            != _count(data, end, b"table:table-row") + data.count(b"</table:table-row>", 0, end)
            or data.count(b"table-cell", 0, end)
            != cells
            + data.count(b"</table:table-cell>", 0, end)
            + data.count(b"</table:covered-table-cell>", 0, end)
        ):
            super().scan(data, end)
            return
        first, *rows = data[:end].split(b"<table:table-row")
        self._fast_row(first)
        if not rows:
            return
        *complete, last = rows
        if complete:  # whole rows: all counted as holding something
            widest = max(
                map(
                    operator.add,
                    map(bytes.count, complete, repeat(b"<table:table-cell")),
                    map(bytes.count, complete, repeat(b"<table:covered-")),
                )
            )
            self.extent.extend(self.row + len(complete), widest)
            self.row += len(complete)
        self.row_repeat, self.column, self.row_columns = 1, 0, 0
        if last[: last.find(b">") + 1].endswith(b"/>"):
            self._end_row()
        else:
            self._fast_row(last)

    def _fast_row(self, stretch: bytes) -> None:
        """Cells (all counted as holding something) of an open row, and its end if there."""
        self.column += stretch.count(b"<table:table-cell") + stretch.count(b"<table:covered-")
        if self.column:
            self.row_columns = self.column
        if b"</table:table-row>" in stretch:
            self._end_row()

    def _end_row(self) -> None:
        if self.row_columns:
            self.extent.extend(self.row + self.row_repeat, self.row_columns)
        self.row += self.row_repeat
        self.row_repeat = 1

    def finish(self) -> None:
        if self.extent.cells > MAX_CELLS:
            raise too_big(self.path, self.extent, self.name)


def _repeat(attributes: bytes) -> int:
    found = _REPEATED.search(attributes)
    return max(1, int(found.group(1))) if found else 1

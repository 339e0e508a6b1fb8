"""Write a cleaned subscriber list back out, row by row: UTF-8 CSV or `.xlsx`.

The CSV carries a byte-order mark and CRLF line ends, so Excel on Windows opens it with the
right characters and LibreOffice, Numbers and Google Sheets read it as well. Its delimiter is
the one asked for (`clean` asks for the input's: German Excel opens a `,` CSV as one column
and writes `;`), else `,`; a `.tsv` is always tab-separated. `.xlsx` is
written in openpyxl's streaming mode; every cell is a text cell, so a value such as
`=HYPERLINK(...)` from a hostile row stays text and never becomes a formula.

A CSV has no cell types, so every CSV kzmail writes (`clean`, `report`, `unsubscribes
export`) passes its cells through `spreadsheet_text`: a cell a spreadsheet would run as a
formula gets a leading `'` (OWASP's advice), which the spreadsheet shows as text. Addresses
are written as they are, never prefixed: they are what the list is matched on.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Collection
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from kzmail.errors import InputError
from kzmail.private import open_private

XLSX_SUFFIXES = {".xlsx", ".xlsm"}
_XML_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
# What Excel, LibreOffice and Google Sheets start a formula with (also the full-width forms
# that East Asian input turns into them), after any leading whitespace or tab/CR they skip.
_FORMULA = re.compile(r"\s*[=+\-@\uff1d\uff0b\uff0d\uff20]")


def runs_as_formula(value: str) -> bool:
    """True if a spreadsheet opening `value` as a CSV cell would run it as a formula."""
    return _FORMULA.match(value) is not None


def spreadsheet_text(value: str) -> str:
    """`value` as a CSV cell a spreadsheet shows as text: `'` before a formula start."""
    return "'" + value if runs_as_formula(value) else value


def spreadsheet_row(cells: list[str], verbatim: Collection[int] = ()) -> list[str]:
    """The cells through `spreadsheet_text`, except the columns in `verbatim` (addresses)."""
    return [c if i in verbatim else spreadsheet_text(c) for i, c in enumerate(cells)]


class ListWriter:
    """`with ListWriter(path, header) as out: out.row(cells)`; the file is complete on exit.

    `verbatim`: the data columns (addresses) a CSV writes without `spreadsheet_text`;
    `delimiter`: a CSV's (default `,`; a `.tsv` path always gets a tab)."""

    def __init__(
        self,
        path: Path,
        header: list[str],
        *,
        verbatim: Collection[int] = (),
        delimiter: str | None = None,
    ) -> None:
        self.path = path
        self._verbatim = frozenset(verbatim)
        self.rows = 0
        self._xlsx = path.suffix.lower() in XLSX_SUFFIXES
        self._handle: IO[str] | None = None
        self._book: Any = None
        try:
            if self._xlsx:
                from openpyxl import Workbook

                self._book = Workbook(write_only=True)
                self._sheet = self._book.create_sheet("subscribers")
            else:
                self._handle = open_private(path, "w", encoding="utf-8-sig", newline="")
                self._csv = csv.writer(
                    self._handle,
                    lineterminator="\r\n",
                    delimiter="\t" if path.suffix.lower() == ".tsv" else delimiter or ",",
                )
        except OSError as exc:
            raise InputError(f"cannot write the list ({exc.strerror})", path=path) from exc
        self._write(header, ())
        self.rows = 0

    def _write(self, cells: list[str], verbatim: Collection[int]) -> None:
        if self._xlsx:
            from openpyxl.cell import WriteOnlyCell

            out = []
            for value in cells:
                cell = WriteOnlyCell(self._sheet, value=_XML_ILLEGAL.sub("", value))
                cell.data_type = "s"
                out.append(cell)
            self._sheet.append(out)
        else:
            self._csv.writerow(spreadsheet_row(cells, verbatim))
        self.rows += 1

    def row(self, cells: list[str]) -> None:
        self._write(cells, self._verbatim)

    def __enter__(self) -> ListWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self._handle is not None:
                self._handle.close()
            elif self._book is not None and kind is None:
                with open_private(self.path, "wb") as target:  # owner-only, like the CSV
                    self._book.save(target)
        except OSError as error:
            raise InputError(f"cannot write the list ({error.strerror})", path=self.path) from error
        if kind is not None:
            self.path.unlink(missing_ok=True)  # never leave half a list behind

"""Write a cleaned subscriber list back out, row by row: UTF-8 CSV or `.xlsx`.

The CSV carries a byte-order mark and CRLF line ends, so Excel on Windows opens it with the
right characters and LibreOffice, Numbers and Google Sheets read it as well. `.xlsx` is
written in openpyxl's streaming mode; every cell is a text cell, so a value such as
`=HYPERLINK(...)` from a hostile row stays text and never becomes a formula.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from .errors import InputError
from .private import open_private

XLSX_SUFFIXES = {".xlsx", ".xlsm"}
_XML_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


class ListWriter:
    """`with ListWriter(path, header) as out: out.row(cells)`; the file is complete on exit."""

    def __init__(self, path: Path, header: list[str]) -> None:
        self.path = path
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
                self._csv = csv.writer(self._handle, lineterminator="\r\n",
                                       delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
        except OSError as exc:
            raise InputError(f"cannot write the list ({exc.strerror})", path=path) from None
        self._write(header)
        self.rows = 0

    def _write(self, cells: list[str]) -> None:
        if self._xlsx:
            from openpyxl.cell import WriteOnlyCell

            out = []
            for value in cells:
                cell = WriteOnlyCell(self._sheet, value=_XML_ILLEGAL.sub("", value))
                cell.data_type = "s"
                out.append(cell)
            self._sheet.append(out)
        else:
            self._csv.writerow(cells)
        self.rows += 1

    def row(self, cells: list[str]) -> None:
        self._write(cells)

    def __enter__(self) -> ListWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if self._handle is not None:
                self._handle.close()
            elif self._book is not None and kind is None:
                with open_private(self.path, "wb") as target:   # owner-only, like the CSV
                    self._book.save(target)
        except OSError as error:
            raise InputError(f"cannot write the list ({error.strerror})",
                             path=self.path) from None
        if kind is not None:
            self.path.unlink(missing_ok=True)      # never leave half a list behind

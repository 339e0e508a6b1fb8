"""Write real list files for tests: text in any encoding, and spreadsheets made by the
libraries that real programs' files resemble (openpyxl, xlwt, odfpy); never hand-made bytes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from kzmail.lists.checker import ListChecker, ListSummary
from kzmail.lists.rows import Problem
from kzmail.models import ListSource, Subscriber

Cell = str | int | float | dt.date
Rows = Sequence[Sequence[Cell]]


def write_text(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def write_xlsx(path: Path, sheets: dict[str, Rows]) -> Path:
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)  # type: ignore[arg-type]
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for r, row in enumerate(rows, 1):
            for c, value in enumerate(row, 1):
                if value != "":
                    sheet.cell(row=r, column=c, value=value)
    book.save(path)
    return path


def write_xls(path: Path, rows: Rows, sheet: str = "Liste") -> Path:
    import xlwt

    book = xlwt.Workbook(encoding="utf-8")
    table = book.add_sheet(sheet)
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            table.write(r, c, value)
    book.save(str(path))
    return path


def write_ods(path: Path, rows: Rows, sheet: str = "Liste") -> Path:
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.table import Table, TableCell, TableRow
    from odf.text import P

    doc = OpenDocumentSpreadsheet()
    table = Table(name=sheet)
    for row in rows:
        tr = TableRow()
        for value in row:
            if isinstance(value, dt.date):
                raise TypeError("dates: write them in xlsx tests")
            if isinstance(value, int | float):
                cell = TableCell(valuetype="float", value=value)
            else:
                cell = TableCell(valuetype="string")
            cell.addElement(P(text=str(value)))
            tr.addElement(cell)
        table.addElement(tr)
    doc.spreadsheet.addElement(table)
    doc.save(str(path))
    return path


def read_all(*sources: Path | ListSource) -> tuple[list[Subscriber], list[Problem], ListSummary]:
    """Check lists the way `kzmail check` does: (subscribers, problems, summary)."""
    lists = [s if isinstance(s, ListSource) else ListSource(path=s) for s in sources]
    subscribers: list[Subscriber] = []
    with ListChecker(lists) as checker:
        for item in checker.rows(strict=False):
            if isinstance(item.result, Subscriber):
                subscribers.append(item.result)
        return subscribers, checker.summary.problems, checker.summary


def emails(subscribers: list[Subscriber]) -> list[tuple[int, str, str]]:
    return [(s.line, s.email, s.name) for s in subscribers]


def lines(problems: list[Problem]) -> list[tuple[int, str]]:
    return [(p.line, p.kind) for p in problems]

"""What the hostile-spreadsheet guard costs on an honest list, against calamine's own read.

Writes a 100,000-row `.xlsx` and `.ods` (`--quick`: 20,000) of four columns, then times, in
this process and best of five: the baseline (calamine opening the workbook and turning every
row into Python values, which kzmail does anyway) and `check_sheet_file` (the guard that
runs before it). Figures are the guard's time as a share of the baseline's.

    python benchmarks/bench_sheets.py [--quick] [--rows N]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from python_calamine import CalamineWorkbook

from kzmail.lists.sheetguard import check_sheet_file


def make_xlsx(path: Path, rows: int) -> None:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("Liste")
    sheet.append(["E-Mail", "Name", "Stadt", "PLZ"])
    for i in range(rows):
        sheet.append([f"user{i}@example{i % 97}.org", f"Person Nummer {i}", "Köln", 10000 + i])
    book.save(path)


def make_ods(path: Path, rows: int) -> None:
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.table import Table, TableCell, TableRow
    from odf.text import P

    doc = OpenDocumentSpreadsheet()
    table = Table(name="Liste")
    for i in range(rows):
        tr = TableRow()
        for value in (f"user{i}@example{i % 97}.org", f"Person Nummer {i}", "Köln"):
            cell = TableCell(valuetype="string")
            cell.addElement(P(text=value))
            tr.addElement(cell)
        table.addElement(tr)
    doc.spreadsheet.addElement(table)
    doc.save(str(path))


def calamine_read(path: Path) -> None:
    book = CalamineWorkbook.from_path(str(path))
    for _ in book.get_sheet_by_name(book.sheet_names[0]).iter_rows():
        pass


def best(run: Callable[[Path], None], path: Path, times: int = 5) -> float:
    fastest = float("inf")
    for _ in range(times):
        start = time.perf_counter()
        run(path)
        fastest = min(fastest, time.perf_counter() - start)
    return fastest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 rows instead of 100,000")
    parser.add_argument("--rows", type=int, default=None)
    options = parser.parse_args()
    rows = options.rows or (20_000 if options.quick else 100_000)
    results = {}
    with tempfile.TemporaryDirectory(prefix="kzmail-bench-") as tmp:
        for suffix, make in ((".xlsx", make_xlsx), (".ods", make_ods)):
            path = Path(tmp) / f"list{suffix}"
            make(path, rows)
            baseline = best(calamine_read, path)
            guard = best(check_sheet_file, path)
            results[suffix] = round(guard / baseline, 3)
            print(
                f"bench_sheets {suffix:<5} {rows:,} rows, {path.stat().st_size / 1e6:.1f} MB: "
                f"calamine read {baseline * 1000:7.1f} ms (baseline), guard "
                f"{guard * 1000:7.1f} ms = {guard / baseline:.2f}x baseline"
            )
    print(json.dumps({"bench": "sheets", "rows": rows, "guard_over_read": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

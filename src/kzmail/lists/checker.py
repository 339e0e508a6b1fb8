"""Check a campaign's subscriber lists as one stream: the single path `check`, `clean`,
`preview` and `send` share.

Several lists are read one after another and merged; each row is classified exactly once,
in this order: invalid address, marked unsubscribed in the list, duplicate of an earlier
row (first row wins, case-insensitive, across all lists), suppressed in the state
database (unsubscribed or bounced), else sendable. Memory stays flat: rows are streamed,
duplicates are found through a temporary SQLite file, and only the first `keep_problems`
problems are kept (every problem still goes to `on_problem`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from kzmail.errors import SubscriberListError
from kzmail.lists.reader import open_list
from kzmail.lists.rows import (
    AddressChecker,
    Columns,
    Problem,
    find_columns,
    parse_row,
    written_address,
)
from kzmail.lists.seen import SeenAddresses
from kzmail.lists.writer import runs_as_formula
from kzmail.models import ANY_LIST, ListSource, Subscriber

ADDRESS_NOTES = 100  # per list; the rest are counted in one more note


class Suppressions(Protocol):
    def is_suppressed(self, list_id: str, address: str) -> bool: ...


@dataclass
class ListSummary:
    """Counts over every row of every list (rows = invalid + duplicates + unsubscribed +
    suppressed + sendable; valid = rows - invalid), notes and kept problems."""

    rows: int = 0
    valid: int = 0
    invalid: int = 0
    duplicates: int = 0
    unsubscribed: int = 0
    suppressed: int = 0
    sendable: int = 0
    problems: list[Problem] = field(default_factory=list)
    problems_total: int = 0
    errors: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def problems_truncated(self) -> int:
        """How many problems were counted but not kept in `problems`."""
        return self.problems_total - len(self.problems)


@dataclass(frozen=True, slots=True)
class Checked:
    """One classified row, with its raw cells (for `clean`)."""

    source: int
    columns: Columns
    cells: list[str]
    result: Subscriber | Problem


class ListChecker:
    """Classify the rows of `sources`; `check()` for counts, `subscribers()` to send."""

    def __init__(
        self,
        sources: Sequence[ListSource],
        *,
        list_id: str = ANY_LIST,
        suppressions: Suppressions | None = None,
        addresses: AddressChecker | None = None,
        on_problem: Callable[[Problem], None] = lambda _: None,
        keep_problems: int = 1000,
    ) -> None:
        self.sources = list(sources)
        self._list_id = list_id
        self._suppressions = suppressions
        self._addresses = addresses or AddressChecker()
        self.on_problem = on_problem
        self._keep = keep_problems
        self._seen = SeenAddresses()
        self.summary = ListSummary()
        self.columns: dict[int, Columns] = {}
        self.delimiters: dict[int, str] = {}  # per text list: the delimiter it was read with

    def close(self) -> None:
        self._seen.close()

    def __enter__(self) -> ListChecker:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def check(self) -> ListSummary:
        """Read every list once; a list that cannot be read is an error, the rest go on."""
        for _ in self.rows(strict=False):
            pass
        return self.summary

    def subscribers(self) -> Iterator[Subscriber]:
        """The sendable subscribers, streamed; a list that cannot be read raises."""
        for item in self.rows(strict=True):
            if isinstance(item.result, Subscriber):
                yield item.result

    def rows(self, *, strict: bool) -> Iterator[Checked]:
        """Every non-blank row of every list, classified; a fresh summary per pass."""
        self.summary = ListSummary()
        self._seen.new_pass()
        for index, source in enumerate(self.sources):
            try:
                yield from self._one_list(index, source)
            except SubscriberListError as exc:
                if strict:
                    raise
                self.summary.errors.append(
                    Problem(exc.path or str(source.path), exc.line or 0, exc.reason, kind="error")
                )

    def _one_list(self, index: int, source: ListSource) -> Iterator[Checked]:
        raw = open_list(
            source.path, encoding=source.encoding, delimiter=source.delimiter, sheet=source.sheet
        )
        label = str(source.path)
        if raw.delimiter:
            self.delimiters[index] = raw.delimiter
        self.summary.notes.extend(f"{label}: {note}" for note in raw.notes)
        columns = find_columns(raw.rows, source.path, source.columns)
        self.columns[index] = columns
        if columns.header_row > 1:
            self.summary.notes.append(
                f"{label}: header found on row {columns.header_row}; the rows above it are ignored"
            )
        count = noted = 0
        for row, cells in raw.rows:
            result = parse_row(columns, label, row, cells, self._addresses)
            if result is None:
                continue
            count += 1
            if isinstance(result, Subscriber):
                note = _address_note(cells[columns.email], result.email)
                if note is not None:
                    noted += 1
                    if noted <= ADDRESS_NOTES:
                        self.summary.notes.append(f"{label}:{row}: {note}")
            result = self._classify(index, result)
            if isinstance(result, Problem):
                self._problem(result)
            yield Checked(index, columns, cells, result)
        if noted > ADDRESS_NOTES:
            self.summary.notes.append(
                f"{label}: {noted - ADDRESS_NOTES} more addresses with a note like the above"
            )
        if count == 0:
            self.summary.notes.append(f"{label}: the list has a header row but no subscriber rows")

    def _where(self, file: int, line: int, here: int) -> str:
        return f"line {line}" if file == here else f"{self.sources[file].path}:{line}"

    def _classify(self, index: int, result: Subscriber | Problem) -> Subscriber | Problem:
        s = self.summary
        s.rows += 1
        if isinstance(result, Problem) and result.kind == "invalid":
            s.invalid += 1
            return result
        s.valid += 1
        if isinstance(result, Problem):  # marked unsubscribed in the list
            address = result.address.lower()
            self._seen.mark(address, index, result.line)
            earlier = self._seen.first(address, index, result.line, "unsubscribed")
            s.unsubscribed += 1
            if earlier is not None and earlier[2] == "sendable":
                s.sendable -= 1
                self._seen.set_state(address, "unsubscribed")
                where = self._where(earlier[0], earlier[1], index)
                return Problem(
                    result.file,
                    result.line,
                    f"{result.reason}; {where} has the same address and is not mailed either",
                    result.kind,
                    address,
                )
            return result
        address = result.email.lower()
        label = str(self.sources[index].path)
        earlier = self._seen.first(address, index, result.line, "sendable")
        marked = self._seen.marked(address)
        if marked is not None:
            s.unsubscribed += 1
            if earlier is None:
                self._seen.set_state(address, "unsubscribed")
            where = self._where(marked[0], marked[1], index)
            return Problem(
                label,
                result.line,
                f"{where} marks this address unsubscribed: not mailed ({result.email})",
                "unsubscribed",
                result.email,
            )
        if earlier is not None:
            s.duplicates += 1
            where = self._where(earlier[0], earlier[1], index)
            return Problem(
                label,
                result.line,
                f"duplicate of {where}: {result.email}",
                "duplicate",
                result.email,
            )
        if self._suppressions is not None and self._suppressions.is_suppressed(
            self._list_id, result.email
        ):
            s.suppressed += 1
            self._seen.set_state(address, "suppressed")
            return Problem(
                label,
                result.line,
                f"{result.email} unsubscribed or bounced earlier (state database): not mailed",
                "suppressed",
                result.email,
            )
        s.sendable += 1
        return result

    def _problem(self, problem: Problem) -> None:
        self.summary.problems_total += 1
        if len(self.summary.problems) < self._keep:
            self.summary.problems.append(problem)
        self.on_problem(problem)


def _address_note(cell: str, address: str) -> str | None:
    """Why a valid address deserves a second look: IDNA/NFKC changed what the list says
    (a look-alike such as a Cyrillic `а` in `pаypal`), or it would start a spreadsheet
    formula in a CSV (addresses are never escaped)."""
    if not cell.isascii():
        written = written_address(cell)[0]
        if not written.isascii():
            return (
                f"address {written!r} was normalised (IDNA/NFKC) to {address!r}: "
                "make sure it is the one meant"
            )
    if runs_as_formula(address):
        return (
            f"address {address!r} starts with {address[0]!r}: a spreadsheet may run it "
            "as a formula when it opens a CSV of this list"
        )
    return None

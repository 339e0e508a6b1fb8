"""Read a subscriber list (CSV export of a spreadsheet) as a stream of clean subscribers.

Each row becomes a `Subscriber` or a `Problem` that names the file and the line a person
sees in their spreadsheet (1-based, header included). Rows are never guessed at: an
address that is not exactly one valid address is a problem, not a recipient.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from email_validator import EmailNotValidError, validate_email

from .errors import SubscriberListError
from .models import Subscriber

_EMAIL_HEADERS = {"email", "e-mail", "mail", "emailaddress", "e-mail-adresse", "email-adresse"}
_NAME_HEADERS = {"name", "fullname", "vollständigername"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True, slots=True)
class Problem:
    """A row that will not be mailed, and why."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


def _key(header: str) -> str:
    return re.sub(r"[\s_]+", "", header.strip().lower())


def field_name(header: str) -> str:
    """A safe template identifier for a column header (`"Post Code"` -> `post_code`)."""
    name = re.sub(r"\W+", "_", header.strip().lower()).strip("_")
    return name if name and not name[0].isdigit() else f"col_{name}"


def clean_address(raw: str) -> str:
    """The normalised ASCII address, or ValueError with a reason."""
    value = raw.strip()
    if value.lower().startswith("mailto:"):
        value = value[7:].strip()
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"invalid address {value!r}: {exc}") from None
    if result.ascii_email is None:
        raise ValueError(f"address {value!r} needs SMTPUTF8 (non-ASCII local part)")
    return result.ascii_email


def _open(path: Path) -> tuple[TextIO, csv.Dialect | type[csv.Dialect]]:
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
        sample = handle.read(64 * 1024)
        handle.seek(0)
    except FileNotFoundError:
        raise SubscriberListError("subscriber list not found", path=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SubscriberListError(f"cannot read subscriber list ({exc})", path=path) from None
    try:
        dialect: csv.Dialect | type[csv.Dialect] = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    return handle, dialect


def read(path: Path) -> Iterator[Subscriber | Problem]:
    """Yield each row of `path` as a Subscriber or a Problem; duplicates are problems."""
    handle, dialect = _open(path)
    rows = csv.reader(handle, dialect)
    label = str(path)
    line = 1
    with handle:
        try:
            header = next(rows, None)
            if header is None:
                raise SubscriberListError("the list is empty (no header row)", path=path, line=1)
            keys = [_key(h) for h in header]
            email_col = next((i for i, k in enumerate(keys) if k in _EMAIL_HEADERS), None)
            if email_col is None:
                raise SubscriberListError("no email column (expected a header like 'email' or "
                                          "'E-Mail')", path=path, line=1)
            name_col = next((i for i, k in enumerate(keys) if k in _NAME_HEADERS), None)
            extra = [(i, field_name(h)) for i, h in enumerate(header)
                     if i not in (email_col, name_col) and h.strip()]
            seen: dict[str, int] = {}
            for row in rows:
                line_start, line = line + 1, rows.line_num
                if not any(cell.strip() for cell in row):
                    continue
                cell = row[email_col] if email_col < len(row) else ""
                try:
                    address = clean_address(cell)
                except ValueError as exc:
                    yield Problem(label, line_start, str(exc))
                    continue
                first = seen.setdefault(address.lower(), line_start)
                if first != line_start:
                    yield Problem(label, line_start, f"duplicate of line {first}: {address}")
                    continue
                name = row[name_col] if name_col is not None and name_col < len(row) else ""
                fields = {key: _CONTROL.sub(" ", row[i]).strip()
                          for i, key in extra if i < len(row)}
                yield Subscriber(email=address, name=_CONTROL.sub(" ", name).strip(),
                                 fields=fields, line=line_start)
        except csv.Error as exc:
            raise SubscriberListError(f"malformed CSV: {exc}", path=path, line=line) from None
        except UnicodeDecodeError as exc:
            raise SubscriberListError(f"not UTF-8 text ({exc.reason})", path=path) from None

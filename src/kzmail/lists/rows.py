"""Turn the raw rows of a list into clean subscribers: find the columns, check each row.

`find_columns` looks for the header row (a title row or notes above it are passed over)
and the email, name, first/last name and unsubscribed columns by their usual English and
German names, unless the campaign names them. `parse_row` makes each row a `Subscriber`
or a `Problem` naming the file and the spreadsheet row. Rows are never guessed at: a cell
that is not exactly one valid address is a problem, not a recipient.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from email_validator import EmailNotValidError, validate_email
from email_validator.deliverability import validate_email_deliverability

from kzmail.errors import SubscriberListError
from kzmail.models import ListColumns, Subscriber
from kzmail.text import CONTROL_CHARS, DNS_LABEL, PLAIN_ADDRESS

HEADER_SEARCH_ROWS = 20
MAX_NAME = 200
_EMAIL = {
    "email",
    "mail",
    "emailaddress",
    "emailadresse",
    "mailadresse",
    "mailaddress",
    "emailadr",
    "email1",
    "email1value",
    "emailaddress1",
    "emails",
    "mailto",
}
_NAME = {"name", "fullname", "vollstandigername", "anzeigename", "displayname", "vollername"}
_FIRST = {"firstname", "vorname", "givenname", "first", "forename"}
_LAST = {"lastname", "nachname", "surname", "familyname", "familienname", "last", "zuname"}
_UNSUBSCRIBED = {
    "unsubscribed",
    "unsubscribe",
    "abgemeldet",
    "abmeldung",
    "optout",
    "abbestellt",
    "ausgetragen",
    "unsubscribedat",
    "abgemeldetam",
}
_FALSY = {"", "0", "no", "n", "nein", "false", "falsch", "f", "-", "none", "off"}
_SPACES = re.compile(r"\s+")
_DISPLAY = re.compile(r"^\s*(?P<name>[^<>]*?)\s*<(?P<addr>[^<>]*)>\s*$")
_DOMAIN_CACHE = 50_000
_DNS_NAME = re.compile(rf"{DNS_LABEL}(?:\.{DNS_LABEL})*")
_FOLD = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "Ä": "ae", "Ö": "oe", "Ü": "ue"})


@dataclass(frozen=True, slots=True)
class Problem:
    """A row that will not be mailed, and why (`kind`: invalid, duplicate, unsubscribed,
    suppressed)."""

    file: str
    line: int
    reason: str
    kind: str = "invalid"
    address: str = ""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.reason}"


def header_key(header: str) -> str:
    """A header reduced for matching: `" E-Mail-Adresse "` -> `emailadresse`."""
    folded = unicodedata.normalize("NFKD", header.strip().lower())
    return re.sub(r"[\W_]+", "", "".join(c for c in folded if not unicodedata.combining(c)))


def field_name(header: str) -> str:
    """A safe ASCII template identifier for a header (`"Post-Leitzahl"` -> `post_leitzahl`)."""
    folded = unicodedata.normalize("NFKD", header.strip().translate(_FOLD).lower())
    ascii_only = folded.encode("ascii", "ignore").decode("ascii")
    name = re.sub(r"[^a-z0-9]+", "_", ascii_only).strip("_")
    return name if name and not name[0].isdigit() else f"col_{name}"


@dataclass(frozen=True)
class Columns:
    """Where things are in a list: the header row and the column of each role."""

    header_row: int
    headers: list[str]
    email: int
    name: int | None = None
    first: int | None = None
    last: int | None = None
    unsubscribed: int | None = None
    fields: list[tuple[int, str]] = field(default_factory=list)


def _pick(
    keys: list[str], wanted: str | None, known: set[str], path: Path, row: int, role: str
) -> int | None:
    if wanted is not None:
        key = header_key(wanted)
        if key not in keys:
            raise SubscriberListError(
                f"no column {wanted!r} (columns.{role} in the campaign)", path=path, line=row
            )
        return keys.index(key)
    return next((i for i, k in enumerate(keys) if k in known), None)


def find_columns(
    rows: Iterator[tuple[int, list[str]]], path: Path, mapping: ListColumns | None = None
) -> Columns:
    """Consume rows up to and including the header row and map its columns."""
    mapping = mapping or ListColumns()
    first_text: int | None = None
    headerless = False
    for row, cells in rows:
        if not any(cell.strip() for cell in cells):
            continue
        if first_text is None:
            first_text = row
            headerless = any("@" in cell for cell in cells)
        keys = [header_key(cell) for cell in cells]
        wanted = header_key(mapping.email) if mapping.email else None
        if (wanted in keys) if wanted else any(k in _EMAIL for k in keys):
            return _columns(row, cells, keys, path, mapping)
        if row - first_text >= HEADER_SEARCH_ROWS:
            break
    if first_text is None:
        raise SubscriberListError("the list is empty (no header row)", path=path, line=1)
    hint = (
        f"no column {mapping.email!r} (columns.email in the campaign)"
        if mapping.email
        else "no email column: expected a header such as 'email', 'E-Mail' or "
        "'E-Mail-Adresse' (or name it with `columns: {email: ...}`)"
    )
    if headerless and not mapping.email:
        hint = "no header row: add one above the first address (e.g. 'email,name')"
    raise SubscriberListError(hint, path=path, line=first_text)


def _columns(
    row: int, cells: list[str], keys: list[str], path: Path, mapping: ListColumns
) -> Columns:
    email = _pick(keys, mapping.email, _EMAIL, path, row, "email")
    assert email is not None
    name = _pick(keys, mapping.name, _NAME, path, row, "name")
    first = _pick(keys, mapping.first_name, _FIRST, path, row, "first_name")
    last = _pick(keys, mapping.last_name, _LAST, path, row, "last_name")
    unsub = _pick(keys, mapping.unsubscribed, _UNSUBSCRIBED, path, row, "unsubscribed")
    taken = {"email", "name"}
    fields: list[tuple[int, str]] = []
    for index, header in enumerate(cells):
        if index in (email, name) or not header.strip():
            continue
        ident = base = field_name(header)
        count = 1
        while ident in taken:
            count += 1
            ident = f"{base}_{count}"
        taken.add(ident)
        fields.append((index, ident))
    return Columns(row, list(cells), email, name, first, last, unsub, fields)


def clean_text(value: str) -> str:
    """One line of text: control characters and line breaks become single spaces."""
    if value.isprintable() and "  " not in value and value == value.strip():
        return value  # the common case, without two regex passes
    return _SPACES.sub(" ", CONTROL_CHARS.sub(" ", value)).strip()


def written_address(raw: str) -> tuple[str, str]:
    """(the address as written in the cell, display name): `mailto:` and `Name <...>` off."""
    value = raw.strip()
    if CONTROL_CHARS.search(value):
        raise ValueError("the address cell holds a line break or control character")
    display = ""
    match = _DISPLAY.match(value)
    if match:
        display, value = match.group("name").strip().strip('"').strip(), match.group("addr")
    value = value.strip()
    if value.lower().startswith("mailto:"):
        value = value[7:].split("?", 1)[0].strip()
    return value, display


class AddressChecker:
    """Address syntax (email-validator) and, opt-in, deliverability of each domain.

    `resolver` is a dnspython Resolver; with `check_dns` off no DNS query is ever made.
    Domain answers are cached, so a million rows cost one query per domain.
    """

    def __init__(self, *, check_dns: bool = False, resolver: Any = None) -> None:
        self._check_dns = check_dns
        self._resolver = resolver
        self._domains: dict[str, str | None] = {}
        self._syntax: dict[str, tuple[bool, str]] = {}

    def clean(self, raw: str) -> tuple[str, str]:
        """(normalised ASCII address, display name found in the cell), or ValueError."""
        value, display = written_address(raw)
        if value.count("@") > 1 or "<" in value or ">" in value:
            raise ValueError(f"more than one address in one cell: {raw.strip()[:80]!r}")
        if not value:
            raise ValueError("no address")
        # a plain ASCII dot-atom local part: email-validator accepts exactly these (length
        # aside), so only the domain needs its full check, and that is done once per domain
        plain = PLAIN_ADDRESS.fullmatch(value)
        if plain and len(plain.group(1)) <= 64 and len(value) <= 254:
            ok, domain = self._domain(plain.group(2))
            if not ok:
                raise ValueError(f"invalid address {value[:80]!r}: {domain}")
            if self._check_dns:
                self._deliverable(domain, domain)
            return f"{plain.group(1)}@{domain}", display
        try:
            result = validate_email(value, check_deliverability=False)
        except EmailNotValidError as exc:
            raise ValueError(f"invalid address {value[:80]!r}: {exc}") from exc
        if result.ascii_email is None:
            raise ValueError(f"address {value!r} needs SMTPUTF8 (non-ASCII before the @)")
        if self._check_dns:
            self._deliverable(result.ascii_domain, result.domain)
        return result.ascii_email, display

    def _domain(self, domain: str) -> tuple[bool, str]:
        """(True, normalised ASCII domain) or (False, reason): email-validator's verdict on
        `x@domain`, cached."""
        key = domain.lower()
        known = self._syntax.get(key)
        if known is None:
            try:
                result = validate_email(f"x@{domain}", check_deliverability=False)
                known = (True, result.ascii_domain)
            except EmailNotValidError as exc:
                known = (False, str(exc))
            if len(self._syntax) >= _DOMAIN_CACHE:
                self._syntax.clear()
            self._syntax[key] = known
        return known

    def _deliverable(self, ascii_domain: str, domain: str) -> None:
        if ascii_domain not in self._domains:
            reason: str | None = None
            try:
                validate_email_deliverability(ascii_domain, domain, dns_resolver=self._resolver)
            except EmailNotValidError as exc:
                reason = str(exc)
            self._domains[ascii_domain] = reason
        reason = self._domains[ascii_domain]
        if reason is not None:
            raise ValueError(f"domain does not accept mail: {reason}")


def clean_address(raw: str) -> str:
    """The normalised ASCII address in `raw` (syntax only), or ValueError with a reason."""
    return AddressChecker().clean(raw)[0]


def special_use_rule(domain: str) -> str | None:
    """Which special-use rule (RFC 6761) reserves `domain`, or None for any other name.

    Mail to these names never reaches a stranger, so a test message may go to them; a list
    may not hold them (`clean_address` refuses them). The example names of RFC 2606
    (example.com, .example) need no rule here: every address check accepts them.
    """
    name = domain.lower()
    if name == "localhost" or name.endswith(".localhost"):
        return "localhost is the loopback name (RFC 6761 section 6.3)"
    if name.endswith(".test"):
        return ".test is reserved for testing (RFC 6761 section 6.2)"
    if name.endswith(".invalid"):
        return ".invalid is reserved as never valid (RFC 6761 section 6.4)"
    return None


def clean_test_address(raw: str) -> tuple[str, str | None]:
    """For a test message only: (the normalised address, the special-use rule that let it
    through, or None for an address `clean_address` accepts), or ValueError with a reason.

    An address at a special-use name gets `clean_address`'s check of its local part and a
    plain DNS-name check of its domain; any other gets exactly `clean_address`'s check.
    """
    try:
        return clean_address(raw), None
    except ValueError:
        value, _ = written_address(raw)
        local, at, domain = value.rpartition("@")
        rule = special_use_rule(domain) if at else None
        if rule is None:
            raise
    if len(domain) > 253 or not _DNS_NAME.fullmatch(domain):
        raise ValueError(f"invalid address {value[:80]!r}: the part after the @ is not a name")
    try:  # the local part, checked as for any address in a list
        checked = clean_address(f"{local}@example.com")
    except ValueError:
        raise ValueError(
            f"invalid address {value[:80]!r}: the part before the @ is not valid"
        ) from None
    return f"{checked.rpartition('@')[0]}@{domain.lower()}", rule


def _cell(cells: list[str], index: int | None) -> str:
    return cells[index] if index is not None and index < len(cells) else ""


def parse_row(
    columns: Columns, file: str, row: int, cells: list[str], checker: AddressChecker
) -> Subscriber | Problem | None:
    """One data row as a Subscriber, a Problem, or None for a blank row."""
    if not any(cell.strip() for cell in cells):
        return None
    try:
        address, display = checker.clean(_cell(cells, columns.email))
    except ValueError as exc:
        return Problem(file, row, str(exc))
    name = clean_text(_cell(cells, columns.name))
    first = clean_text(_cell(cells, columns.first))
    if not name:
        parts = (first, clean_text(_cell(cells, columns.last)))
        name = " ".join(p for p in parts if p) or clean_text(display)
    if len(name) > MAX_NAME:
        return Problem(file, row, f"name is longer than {MAX_NAME} characters: {address}")
    fields = {ident: clean_text(cells[i]) if i < len(cells) else "" for i, ident in columns.fields}
    if columns.unsubscribed is not None:
        mark = _cell(cells, columns.unsubscribed).strip().lower()
        if mark not in _FALSY:
            header = columns.headers[columns.unsubscribed].strip()
            return Problem(
                file,
                row,
                f"marked {header} = {mark[:40]!r}: not mailed",
                kind="unsubscribed",
                address=address,
            )
    return Subscriber(email=address, name=name, fields=fields, line=row, first_name=first)

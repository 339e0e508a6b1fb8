"""The organiser's reply mailbox, read one message at a time: mbox, Maildir or IMAP(S).

`open_source(spec)` takes a path (an mbox file, or a Maildir with `new/` and `cur/`) or an
`imap://` / `imaps://user@host[:port]/FOLDER` address and hands on `Item`s: the message's
id (a Maildir file's name without its `:2,` flags, the 1-based position in an mbox, the
IMAP UID), its bytes, or a one-line problem when it cannot be read (too big, a mangled
mbox `From ` line). Memory stays flat: one message is held at a time and none bigger than
`MAX_BYTES`. `Source.handled` marks a message done (IMAP: `\\Seen`, or moved); nothing here
ever deletes a message.
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import re
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import unquote, urlsplit

from kzmail.errors import InputError, MailboxError

MAX_BYTES = 20 * 1024 * 1024  # a bounce returning a 50 MB attachment is reported, not read


@dataclass(frozen=True, slots=True)
class Item:
    """One message of the mailbox, or why it could not be read (`data` is then None)."""

    id: str
    where: str
    data: bytes | None
    problem: str = ""
    seen: bool = False  # IMAP: already flagged \Seen (no need to flag it again)


class Source(Protocol):
    def items(self) -> Iterator[Item]: ...

    def handled(self, item: Item, move_to: str | None) -> None: ...

    def close(self) -> None: ...


class MaildirSource:
    """The files of a Maildir's `new/` and `cur/`, sorted by name."""

    def __init__(self, path: Path) -> None:
        if not (path / "cur").is_dir() and not (path / "new").is_dir():
            raise InputError("a folder must be a Maildir (with cur/ and new/)", path=path)
        self._path = path

    def items(self) -> Iterator[Item]:
        for sub in ("new", "cur"):
            folder = self._path / sub
            if not folder.is_dir():
                continue
            names = sorted(e.name for e in os.scandir(folder) if not e.name.startswith("."))
            for name in names:
                yield self._read(folder / name, name.split(":2,", 1)[0])

    @staticmethod
    def _read(path: Path, ident: str) -> Item:
        try:
            with path.open("rb") as handle:
                data = handle.read(MAX_BYTES + 1)
        except OSError as exc:
            return Item(ident, str(path), None, f"cannot read ({exc.strerror})")
        if len(data) > MAX_BYTES:
            return Item(ident, str(path), None, f"bigger than {MAX_BYTES // 2**20} MB: not read")
        return Item(ident, str(path), data)

    def handled(self, item: Item, move_to: str | None) -> None:
        """Files stay as they are: the state database remembers what was handled."""

    def close(self) -> None:
        pass


_FROM_LINE = re.compile(rb"^From \S+ ")  # "From sender date", as mboxo/mboxrd write it


class MboxSource:
    """The messages of an mbox file, split on its `From ` lines while reading."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def items(self) -> Iterator[Item]:
        try:
            handle = self._path.open("rb")
        except FileNotFoundError:
            raise InputError("file not found", path=self._path) from None
        except OSError as exc:
            raise InputError(f"cannot read the file ({exc.strerror})", path=self._path) from exc
        with handle:
            yield from self._split(handle)

    def _split(self, handle: BinaryIO) -> Iterator[Item]:
        number, lines, size, mangled, blank = 0, list[bytes](), 0, False, True
        for line in handle:
            if line.startswith(b"From ") and blank:
                if number or lines:
                    yield self._item(number or 1, lines, size, mangled)
                number += 1
                lines, size = [], 0
                mangled = _FROM_LINE.match(line) is None
            elif size <= MAX_BYTES:
                text = line[1:] if line.startswith(b">From ") else line
                lines.append(text)
                size += len(text)
            else:
                size += len(line)
            blank = line in (b"\n", b"\r\n")
        if number or lines:
            yield self._item(number or 1, lines, size, mangled or number == 0)

    def _item(self, number: int, lines: list[bytes], size: int, mangled: bool) -> Item:
        where = f"{self._path} message {number}"
        if mangled:
            return Item(str(number), where, None, "mangled mbox 'From ' line: not read")
        if size > MAX_BYTES:
            return Item(str(number), where, None, f"bigger than {MAX_BYTES // 2**20} MB: not read")
        return Item(str(number), where, b"".join(lines))

    def handled(self, item: Item, move_to: str | None) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class ImapAddress:
    """`imap(s)://user@host[:port]/FOLDER`, parsed."""

    tls: bool
    user: str
    host: str
    port: int
    folder: str


def parse_imap(spec: str) -> ImapAddress:
    parts = urlsplit(spec)
    if parts.scheme not in ("imap", "imaps") or not parts.hostname or not parts.username:
        raise InputError("expected imap(s)://user@host[:port]/FOLDER", key="SOURCE")
    tls = parts.scheme == "imaps"
    try:
        port = parts.port or (993 if tls else 143)
    except ValueError as exc:
        raise InputError(f"bad port in {spec}", key="SOURCE") from exc
    folder = unquote(parts.path.lstrip("/")) or "INBOX"
    return ImapAddress(tls, unquote(parts.username), parts.hostname, port, folder)


class ImapSource:
    """A folder on an IMAP server: read with BODY.PEEK (nothing flagged until `handled`)."""

    def __init__(
        self, address: ImapAddress, password: str, cafile: Path | None, move_to: str | None
    ) -> None:
        self._address = address
        self._where = where = f"{address.host}:{address.port}"
        try:
            if address.tls:
                context = ssl.create_default_context(cafile=cafile)
                self._imap: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                    address.host, address.port, ssl_context=context, timeout=60
                )
            else:
                self._imap = imaplib.IMAP4(address.host, address.port, timeout=60)
            self._imap.login(address.user, password)
            _, caps = self._imap.capability()  # the list before login may lack MOVE
            self._can_move = b"MOVE" in b" ".join(c for c in caps if isinstance(c, bytes)).split()
            status, _ = self._imap.select(_quoted(address.folder))
        except (OSError, imaplib.IMAP4.error) as exc:
            raise InputError(f"IMAP {where}: {exc}", key="SOURCE") from exc
        if status != "OK":
            raise InputError(f"IMAP {where}: no folder {address.folder}", key="SOURCE")
        if move_to and not self._exists(move_to):
            self.close()
            raise InputError(
                f"IMAP {where}: no folder {move_to!r} to move handled messages to: create "
                "it first (nothing was read or changed)",
                key="--move-to",
            )

    def _exists(self, folder: str) -> bool:
        with self._mapped():
            status, found = self._imap.list('""', _quoted(folder))
        return status == "OK" and any(isinstance(line, bytes) for line in found)

    @contextlib.contextmanager
    def _mapped(self) -> Iterator[None]:
        """imaplib's and the socket's errors, as one line naming the server."""
        try:
            yield
        except MailboxError:
            raise
        except (OSError, imaplib.IMAP4.error) as exc:
            raise MailboxError(
                f"IMAP {self._where}: the connection was lost ({type(exc).__name__}: "
                f"{str(exc)[:120] or 'closed'}); what this run committed before stays "
                "committed: run it again to go on"
            ) from exc

    def items(self) -> Iterator[Item]:
        with self._mapped():
            status, found = self._imap.uid("SEARCH", "ALL")
        uids = found[0].split() if status == "OK" and found and found[0] else []
        for raw in uids:
            with self._mapped():
                item = self._fetch(raw.decode())
            yield item

    def _fetch(self, uid: str) -> Item:
        where = f"imap {self._address.folder} UID {uid}"
        _, sized = self._imap.uid("FETCH", uid, "(RFC822.SIZE FLAGS)")
        head = sized[0] if isinstance(sized[0], bytes) else b""
        match = re.search(rb"RFC822\.SIZE (\d+)", head)
        seen = re.search(rb"FLAGS \([^)]*\\Seen", head, re.I) is not None
        if match and int(match.group(1)) > MAX_BYTES:
            return Item(uid, where, None, f"bigger than {MAX_BYTES // 2**20} MB: not read", seen)
        status, got = self._imap.uid("FETCH", uid, "(BODY.PEEK[])")
        for part in got:
            if isinstance(part, tuple):
                return Item(uid, where, bytes(part[1]), seen=seen)
        return Item(uid, where, None, f"the server returned no message ({status})")

    def handled(self, item: Item, move_to: str | None) -> None:
        """Flag `\\Seen`, or move to `move_to` (MOVE, else COPY and `\\Seen`): never delete."""
        with self._mapped():
            if move_to:
                verb = "MOVE" if self._can_move else "COPY"
                status, said = self._imap.uid(verb, item.id, _quoted(move_to))
                if status != "OK":
                    raise MailboxError(
                        f"IMAP {self._where}: cannot {verb} UID {item.id} to {move_to!r} "
                        f"({status} {said[0]!r})"
                    )
                if verb == "MOVE":
                    return
            if not item.seen:  # a run repeats old messages: no round trip for each
                self._imap.uid("STORE", item.id, "+FLAGS", "(\\Seen)")

    def close(self) -> None:
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            self._imap.logout()


def _quoted(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def open_source(
    spec: str, password: str = "", cafile: Path | None = None, move_to: str | None = None
) -> Source:
    """The source `spec` names (see the module); an IMAP `move_to` folder must exist."""
    if spec.startswith(("imap://", "imaps://")):
        return ImapSource(parse_imap(spec), password, cafile, move_to)
    path = Path(spec)
    if path.is_dir():
        return MaildirSource(path)
    if not path.exists():
        raise InputError("no such mbox file or Maildir", path=path)
    return MboxSource(path)

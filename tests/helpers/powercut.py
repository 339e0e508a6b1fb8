"""A power cut replayed from a syscall trace: the state files as a disk would hold them.

`strace -f -y -xx -s N` records, in order, every write to the state database and its WAL
(with offsets and bytes), every truncate, every fsync/fdatasync, and every write to a
socket. `Trace.cut(at)` rebuilds each state file as it would be after losing power at line
`at` in the worst case: only what was written before the start of the file's last sync
that had returned by then survives; every later write is lost. `dots_before(at)` says which
recipients' final CRLF.CRLF had left by then (the relay has those messages).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

CALL = re.compile(r"^(\d+)\s+(\w+)\((.*)$")
RESUMED = re.compile(r"^(\d+)\s+<\.\.\. (\w+) resumed>(.*)$")
FD = re.compile(r"^(\d+)<([^>]*)>")
STRING = re.compile(r'"((?:\\x[0-9a-f]{2})*)"')
RCPT = re.compile(rb"RCPT TO:<([^>]+)>")
END_OF_DATA = b"\r\n.\r\n"
FILES = ("state.db", "state.db-wal")


@dataclass
class Trace:
    """What the trace shows about the state files and the sockets, by line number."""

    folder: Path  # the state folder whose files are followed
    ops: dict[str, list[tuple[int, int, bytes | int]]] = field(default_factory=dict)
    syncs: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # (start, end)
    dots: list[tuple[int, str]] = field(default_factory=list)  # (line, recipient)
    _pending: dict[str, tuple[int, str, str]] = field(default_factory=dict)
    _rcpt: dict[str, str] = field(default_factory=dict)
    _tail: dict[str, bytes] = field(default_factory=dict)  # last bytes sent, per socket

    @classmethod
    def read(cls, trace: Path, folder: Path) -> Trace:
        found = cls(folder.resolve(), {f: [] for f in FILES}, {f: [] for f in FILES})
        with trace.open(encoding="ascii", errors="replace") as lines:
            for number, line in enumerate(lines):
                found._line(number, line.rstrip("\n"))
        return found

    def _line(self, number: int, line: str) -> None:
        resumed = RESUMED.match(line)
        if resumed is not None:
            pid, _name, rest = resumed.groups()
            if pid in self._pending:
                start, name, head = self._pending.pop(pid)
                self._call(start, number, name, head + rest)
            return
        call = CALL.match(line)
        if call is None:
            return
        pid, name, rest = call.groups()
        if rest.endswith("<unfinished ...>"):
            self._pending[pid] = (number, name, rest.removesuffix("<unfinished ...>"))
            return
        self._call(number, number, name, rest)

    def _call(self, start: int, end: int, name: str, args: str) -> None:
        if name in ("unlink", "unlinkat") and args.endswith("= 0"):
            path = Path(_bytes(STRING.findall(args)[0]).decode())
            if path.parent == self.folder and path.name in FILES:
                self.ops[path.name].append((end, -2, 0))  # a new file of that name follows
            return
        target = FD.match(args)
        if target is None or not re.search(r"= \d+\s*$", args):
            return  # not on a descriptor, or it failed
        where = _text(target.group(2))  # -xx writes the name in hex too
        if where.startswith(("TCP:", "socket:")):
            self._socket(end, where, b"".join(_bytes(s) for s in STRING.findall(args)))
            return
        path = Path(where)
        if path.parent != self.folder or path.name not in FILES:
            return
        if name == "pwrite64":
            data = _bytes(STRING.findall(args)[0])
            offset = int(args.rsplit(",", 1)[1].split(")")[0])
            self.ops[path.name].append((end, offset, data))
        elif name == "ftruncate":
            length = int(args.split(",", 1)[1].split(")")[0])
            self.ops[path.name].append((end, -1, length))
        elif name in ("fsync", "fdatasync"):
            self.syncs[path.name].append((start, end))

    def _socket(self, line: int, where: str, data: bytes) -> None:
        for rcpt in RCPT.findall(data):
            self._rcpt[where] = rcpt.decode().lower()
        # a partial send may split the final dot across two writes
        seen = self._tail.get(where, b"") + data
        self._tail[where] = seen[-4:]
        if END_OF_DATA in seen and where in self._rcpt:
            self.dots.append((line, self._rcpt[where]))

    def dots_before(self, at: int) -> set[str]:
        return {rcpt for line, rcpt in self.dots if line < at}

    def cut(self, at: int, into: Path) -> None:
        """Write each state file into `into` as the disk holds it after a power cut at `at`."""
        for name in FILES:
            durable = max((s for s, e in self.syncs[name] if e < at), default=-1)
            content = bytearray()
            for line, offset, data in self.ops[name]:
                if line >= durable:
                    break
                if offset == -2:
                    content = bytearray()
                elif offset < 0:
                    assert isinstance(data, int)
                    del content[data:]
                else:
                    assert isinstance(data, bytes)
                    if len(content) < offset:
                        content += bytes(offset - len(content))
                    content[offset : offset + len(data)] = data
            (into / name).write_bytes(bytes(content))


def _text(escaped: str) -> str:
    return _bytes(escaped).decode("utf-8", "replace") if escaped.startswith("\\x") else escaped


def _bytes(escaped: str) -> bytes:
    return bytes.fromhex(escaped.replace("\\x", ""))

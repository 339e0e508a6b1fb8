"""Read the receiving server's Authentication-Results (RFC 8601) and decide if From is proven.

Takes a parsed message and the authserv-ids the organiser trusts; hands on whether a DKIM
or SPF pass in the topmost trusted headers is aligned with the From domain. Only headers
the receiving server put on top count: a sender can write any header lower down.
A small parser of our own: the one on PyPI (authres) has had no release since 2019.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.message import Message

HEADER = "authentication-results"
MAX_HEADER_CHARS = 8192  # far above any real header; a longer one is not trusted
_PAIR = re.compile(r'([A-Za-z0-9_.\-/]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s";]+)')


@dataclass(frozen=True)
class Result:
    """One method's verdict: `dkim=pass header.d=example.org` -> dkim, pass, {header.d: ...}."""

    method: str
    result: str
    props: dict[str, str] = field(default_factory=dict)


def _strip_comments(text: str) -> str:
    """The text without (nested) comments; quoted strings are kept as they are."""
    out: list[str] = []
    depth, quoted, escaped = 0, False, False
    for char in text:
        if escaped:
            escaped = False
            if depth == 0:
                out.append(char)
            continue
        if char == "\\":
            escaped = True
            if depth == 0:
                out.append(char)
        elif quoted:
            quoted = char != '"'
            out.append(char)
        elif char == "(":
            depth += 1
        elif char == ")" and depth:
            depth -= 1
        elif depth == 0:
            quoted = char == '"'
            out.append(char)
    return "".join(out)


def _split(text: str) -> list[str]:
    """`text` split at semicolons outside quoted strings."""
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == ";" and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def parse(value: str) -> tuple[str, list[Result]] | None:
    """(authserv-id, results) of one header value, or None if it is not one."""
    if len(value) > MAX_HEADER_CHARS:
        return None
    head, *infos = _split(_strip_comments(" ".join(value.split())))
    words = head.split()
    if not words or len(words) > 2 or (len(words) == 2 and not words[1].isdigit()):
        return None
    results = []
    for info in infos:
        pairs = _PAIR.findall(info)
        if not pairs or info.strip().lower() == "none":
            continue
        (method, verdict), *rest = pairs
        props = {key.lower(): _unquote(val) for key, val in rest if "." in key}
        results.append(Result(method.split("/")[0].lower(), verdict.lower(), props))
    return words[0].lower(), results


def trusted_results(message: Message, authserv_ids: Iterable[str]) -> list[Result]:
    """The results in the topmost block of A-R headers from a trusted authserv-id.

    The block starts at the first trusted header and ends at the first header of any
    other kind: whatever lies below came from earlier hops, or from the sender.
    """
    trusted = {a.strip().lower() for a in authserv_ids if a.strip()}
    found: list[Result] = []
    started = False
    for name, value in message.items():
        if name.lower() != HEADER:
            if started:
                break
            continue
        parsed = parse(str(value))
        if parsed is not None and parsed[0] in trusted:
            started = True
            found.extend(parsed[1])
    return found


def aligned(domain: str, from_domain: str) -> bool:
    """Relaxed alignment: equal, or one a subdomain of the other (never a bare TLD)."""
    a, b = domain.strip().rstrip(".").lower(), from_domain.strip().rstrip(".").lower()
    if not a or not b:
        return False
    if a == b:
        return True
    shorter, longer = sorted((a, b), key=len)
    return "." in shorter and longer.endswith("." + shorter)


def _domain_of(value: str) -> str:
    return value.rpartition("@")[2]


def from_is_proven(results: Iterable[Result], from_domain: str) -> bool:
    """Whether a DKIM pass (header.d / header.i) or SPF pass (smtp.mailfrom) aligns."""
    for result in results:
        if result.result != "pass":
            continue
        keys: tuple[str, ...]
        if result.method == "dkim":
            keys = ("header.d", "header.i")
        elif result.method == "spf":
            keys = ("smtp.mailfrom",)
        else:
            continue
        if any(aligned(_domain_of(result.props.get(k, "")), from_domain) for k in keys):
            return True
    return False


def proven(message: Message, from_address: str, authserv_ids: Iterable[str]) -> bool:
    """Whether the trusted headers of `message` prove `from_address`'s domain."""
    return from_is_proven(trusted_results(message, authserv_ids), _domain_of(from_address))

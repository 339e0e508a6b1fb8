"""DKIM-sign finished messages (RFC 6376, relaxed/relaxed; rsa-sha256 and RFC 8463 ed25519-sha256).

`DkimSigner` is built once per campaign: the key is parsed, the algorithm chosen from the key
type and the fixed part of the DKIM-Signature header prepared. Per message it canonicalises the
body (a few C-speed byte substitutions), hashes it, canonicalises the signed headers and makes
one private-key signature with `cryptography` (OpenSSL), then hands on the message bytes with
the DKIM-Signature header in front. `check_key` reports what would make the signature useless.

Signing comes in two halves around the private-key operation, so that the operation can run
elsewhere (see `dkim.pool`): `prepare` hands on an `Unsigned` (plain data: the message, the
tags and the SHA-256 digest of the canonical signed headers), `finish` adds the signature
made over that digest. `sign` is both halves with the key operation in between, in-process.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from kzmail.dkim.worker import Key, sign_digest
from kzmail.errors import DkimKeyError
from kzmail.models import DkimSettings

# Signed when present. From, Subject, List-Unsubscribe(-Post), List-Id, To, Reply-To and Date are
# also "over-signed" (named once more than they occur, even when absent), so that nobody can add
# one more later without breaking the signature.
SIGNED = (
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "reply-to",
    "list-id",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "mime-version",
    "content-type",
    "content-language",
)
OVERSIGNED = frozenset(
    (
        "from",
        "to",
        "subject",
        "date",
        "reply-to",
        "list-id",
        "list-unsubscribe",
        "list-unsubscribe-post",
    )
)
MIN_RSA_BITS = 2048

_WSP = re.compile(rb"[ \t]+")
_SPACES = re.compile(rb" +")
_SPACE_CRLF = re.compile(rb" \r\n")
_FOLD = re.compile(rb"\r\n(?=[ \t])")
_FIELD = re.compile(rb"\r\n(?![ \t])")


def load_key(path: Path) -> Key:
    """The private key in `path` (PEM, PKCS#1 or PKCS#8), RSA or Ed25519."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DkimKeyError(f"cannot read DKIM key {path}: {exc.strerror or exc}") from exc
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise DkimKeyError(f"{path} is not an unencrypted PEM private key ({exc})") from exc
    if isinstance(key, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
        return key
    raise DkimKeyError(f"{path}: DKIM needs an RSA or Ed25519 key, not {type(key).__name__}")


def public_record(key: Key) -> str:
    """The TXT record to publish at `<selector>._domainkey.<domain>` for this key."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        raw = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode()}"
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"


def _squeeze(data: bytes, needle: bytes, run: re.Pattern[bytes], keep: bytes) -> bytes:
    """Replace each `run` that starts at an occurrence of `needle` with `keep`.

    Only the few places that need it are touched: `bytes.find` skips the rest at memory speed,
    where a regex over the body would look at every single space (see
    docs/decisions/0004-wire-ready-bytes.md).
    """
    index = data.find(needle)
    if index < 0:
        return data
    out: list[bytes] = []
    start = 0
    while index >= 0:
        match = run.match(data, index)
        end = match.end() if match else index + len(needle)
        out += (data[start:index], keep)
        start = end
        index = data.find(needle, end)
    out.append(data[start:])
    return b"".join(out)


def relaxed_piece(piece: bytes) -> bytes:
    """Relaxed canonicalisation of whole CRLF lines: runs of WSP -> one SP, none at line ends.

    Line-local, so a body made of pieces that each end on a line break canonicalises piece
    by piece (the message stage caches the pieces every subscriber shares).
    """
    if b"\t" in piece:
        piece = piece.replace(b"\t", b" ")
    piece = _squeeze(piece, b"  ", _SPACES, b" ")
    return _squeeze(piece, b" \r\n", _SPACE_CRLF, b"\r\n")


def body_hash(canonical: bytes) -> str:
    """The bh= value for an already canonicalised body."""
    return bh_value(hashlib.sha256(canonical).digest())


def bh_value(digest: bytes) -> str:
    """The bh= value for the SHA-256 `digest` of a canonical body (hashed piece by piece)."""
    return base64.b64encode(digest).decode()


def relaxed_body(body: bytes) -> bytes:
    """RFC 6376 3.4.4: runs of WSP -> one SP, no WSP at line ends, no empty lines at the end."""
    body = relaxed_piece(body)
    end = len(body)
    while body.endswith(b"\r\n", 0, end):  # only whole empty lines, not a stray CR
        end -= 2
    return body[:end] + b"\r\n" if end else b""


def relaxed_header(name: str, raw_value: bytes) -> bytes:
    """RFC 6376 3.4.2: lower-case name, value unfolded, WSP runs -> one SP, trimmed."""
    if b"\r" in raw_value or b"\t" in raw_value or b"  " in raw_value:
        value = _WSP.sub(b" ", _FOLD.sub(b"", raw_value)).strip(b" ")
    else:  # the common case: nothing to unfold or squeeze
        value = raw_value.strip(b" ")
    return name.encode("ascii") + b":" + value + b"\r\n"


def split_headers(head: bytes) -> list[tuple[str, bytes]]:
    """(lower-case name, raw value after the colon) for each header field, folds kept."""
    fields: list[tuple[str, bytes]] = []
    for field in _FIELD.split(head):
        if not field:
            continue
        name, sep, value = field.partition(b":")
        if sep:
            fields.append((name.decode("ascii", "replace").strip().lower(), value))
    return fields


def _fold_list(names: Sequence[str], first: int) -> str:
    """`a:b:c` with folds after colons so that no line passes 76 characters."""
    out, width = "", first
    for index, name in enumerate(names):
        piece = name if index == 0 else ":" + name
        if width + len(piece) > 76 and index:
            out += ":\r\n " + name
            width = 1 + len(name)
        else:
            out += piece
            width += len(piece)
    return out


def _fold_b64(value: str, first: int) -> str:
    lines, width, start = [], 76 - first, 0
    while start < len(value):
        lines.append(value[start : start + width])
        start += width
        width = 75
    return "\r\n ".join(lines)


@dataclass(frozen=True, slots=True)
class Unsigned:
    """A message whose DKIM-Signature header lacks only the signature itself.

    `digest` is the SHA-256 of the canonical signed-header block: all the private-key
    operation needs (`dkim.worker.sign_digest`); `finish` completes the header from the rest.
    """

    message: bytes
    tags: str
    digest: bytes


class DkimSigner:
    """Signs one campaign's messages; key, algorithm and tag template are prepared once."""

    def __init__(
        self,
        settings: DkimSettings,
        key: Key | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.key = key if key is not None else load_key(settings.key_file)
        algorithm = (
            "ed25519-sha256" if isinstance(self.key, ed25519.Ed25519PrivateKey) else "rsa-sha256"
        )
        self._prefix = (
            f"v=1; a={algorithm}; c=relaxed/relaxed;\r\n"
            f" d={settings.domain}; s={settings.selector};"
        )
        self._clock = clock
        self._names: dict[tuple[str, ...], tuple[list[str], str]] = {}

    def _h_tag(self, present: tuple[str, ...]) -> tuple[list[str], str]:
        """Which header names to sign for a message with these headers (cached per shape)."""
        cached = self._names.get(present)
        if cached is None:
            names: list[str] = []
            for name in SIGNED:
                count = present.count(name)
                # an over-signed name is listed even when absent: then none may be added
                names += [name] * (count + (1 if name in OVERSIGNED else 0))
            cached = names, _fold_list(names, 3)
            self._names[present] = cached
        return cached

    def sign(self, message: bytes, bh: str | None = None) -> bytes:
        """`message` (CRLF line ends) with a DKIM-Signature header in front of it.

        `bh`, if given, is the body hash the caller already computed (see `body_hash`).
        """
        unsigned = self.prepare(message, bh)
        return self.finish(unsigned, sign_digest(self.key, unsigned.digest))

    def prepare(self, message: bytes, bh: str | None = None) -> Unsigned:
        """Everything `sign` does before the private-key operation (same arguments)."""
        end = message.find(b"\r\n\r\n")  # no copy of the body when `bh` is given
        head = message[:end] if end >= 0 else message.rstrip(b"\r\n")
        if bh is None:
            bh = body_hash(relaxed_body(message[end + 4 :] if end >= 0 else b""))
        fields = split_headers(head)
        names, h_tag = self._h_tag(tuple(name for name, _ in fields))
        # RFC 6376 5.4.2: several instances of a name are taken from the bottom up.
        remaining: dict[str, list[bytes]] = {}
        for name, value in fields:
            remaining.setdefault(name, []).append(value)
        signed = bytearray()
        for name in names:
            values = remaining.get(name)
            if values:
                signed += relaxed_header(name, values.pop())
        tags = f" {self._prefix} t={int(self._clock())};\r\n h={h_tag};\r\n bh={bh};\r\n b="
        # The header signs itself with an empty b= (RFC 6376 3.7), without its final CRLF.
        signed += relaxed_header("dkim-signature", tags.encode("ascii"))[:-2]
        return Unsigned(message, tags, hashlib.sha256(signed).digest())

    def finish(self, unsigned: Unsigned, signature: bytes) -> bytes:
        """The message with its DKIM-Signature header, `signature` made over the digest."""
        b = base64.b64encode(signature).decode()
        header = f"DKIM-Signature:{unsigned.tags}{_fold_b64(b, 3)}\r\n".encode("ascii")
        return header + unsigned.message


def _domain_of(address: str) -> str:
    return parseaddr(address)[1].rpartition("@")[2].lower().rstrip(".")


def _aligned(domain: str, from_domain: str) -> bool:
    """DMARC relaxed alignment, approximated without a public-suffix list: one domain is the
    other or a subdomain of it."""
    return (
        from_domain == domain
        or from_domain.endswith("." + domain)
        or domain.endswith("." + from_domain)
    )


def check_key(settings: DkimSettings, from_address: str, published: str | None = None) -> list[str]:
    """Problems that would make the signature fail or be ignored; empty when all is well.

    `published` is the TXT record found at `<selector>._domainkey.<domain>` (if the caller
    looked it up); it must carry the public half of the configured key.
    """
    problems: list[str] = []  # `DkimSettings` made sure domain and selector are DNS names
    try:
        key = load_key(settings.key_file)
    except DkimKeyError as exc:
        return [*problems, f"dkim.key_file: {exc}"]
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < MIN_RSA_BITS:
        problems.append(
            f"dkim.key_file: RSA key has {key.key_size} bits; use at least "
            f"{MIN_RSA_BITS} (receivers ignore or distrust shorter keys)"
        )
    from_domain = _domain_of(from_address)
    if not _aligned(settings.domain.lower(), from_domain):
        problems.append(
            f"dkim.domain: {settings.domain} is not aligned with the From domain "
            f"{from_domain}: DMARC will not count the signature"
        )
    if published is not None:
        expected = _tags(public_record(key))
        found = _tags(published)
        if found.get("p") != expected["p"] or found.get("k", "rsa") != expected["k"]:
            problems.append(
                f"dkim: the record published at {settings.selector}._domainkey."
                f"{settings.domain} does not match the key in dkim.key_file; "
                f"publish: {public_record(key)}"
            )
    return problems


def _tags(record: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for part in record.split(";"):
        name, sep, value = part.partition("=")
        if sep:
            tags[name.strip()] = re.sub(r"\s+", "", value)
    return tags

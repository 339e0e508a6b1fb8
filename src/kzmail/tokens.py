"""Personal, tamper-proof, opaque unsubscribe tokens.

A token carries the list and the address encrypted and authenticated with keys derived
from the project secret (kept by `kzmail.state.secret`): deterministic authenticated
encryption in the SIV way (RFC 5297's construction, HMAC-SHA256 as the PRF), so without
the secret it reveals neither the address nor its length beyond a 16-byte block, and the
same subscriber gets the same link in every message. It is URL-safe, so it can sit in
`<unsubscribe.url>/u/<token>`.

Links in messages sent before opaque tokens ("v1": base64 of "list\naddress", a dot, an
HMAC tag) are still accepted. A `TokenSigner` checks tokens against the current secret and
every retired one still inside its grace period; it reads no files.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum

_TAG_BYTES = 16  # 128-bit tag: unforgeable, keeps URLs short
_V2 = b"\x02"  # first byte of an opaque token; a v1 token always holds a dot
_BLOCK = 16  # the plaintext is padded to whole blocks: the length says little
MAX_TOKEN_CHARS = 1024  # far above any real token; refuse bigger ones before decoding


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class RetiredSecret:
    """A former secret: its tokens are accepted until `valid_until` (Unix time)."""

    secret: bytes
    retired_at: float
    valid_until: float


class Refusal(Enum):
    """Why a token was not accepted."""

    MALFORMED = "malformed"  # not a token at all
    FORGED = "forged"  # no secret we know made this tag
    EXPIRED = "expired"  # made by a secret retired longer ago than its grace period


class _Keys:
    """The MAC and encryption keys of opaque tokens, derived from one project secret; each
    keyed HMAC is set up once and copied per use (the key's pads are hashed once)."""

    def __init__(self, secret: bytes) -> None:
        mac = hmac.new(secret, b"kzmail token v2 mac", hashlib.sha256).digest()
        enc = hmac.new(secret, b"kzmail token v2 enc", hashlib.sha256).digest()
        self._mac = hmac.new(mac, digestmod=hashlib.sha256)
        self._enc = hmac.new(enc, digestmod=hashlib.sha256)

    def iv(self, padded: bytes) -> bytes:
        keyed = self._mac.copy()
        keyed.update(_V2 + padded)
        return keyed.digest()[:_TAG_BYTES]

    def crypt(self, iv: bytes, data: bytes) -> bytes:
        """`data` XOR the HMAC-SHA256 counter-mode keystream for `iv` (both ways)."""
        blocks = []
        for i in range((len(data) + 31) // 32):
            keyed = self._enc.copy()
            keyed.update(iv + i.to_bytes(4, "big"))
            blocks.append(keyed.digest())
        stream = b"".join(blocks)[: len(data)]
        size = len(data)
        mixed = int.from_bytes(data, "big") ^ int.from_bytes(stream, "big")
        return mixed.to_bytes(size, "big")


def _seal_v2(keys: _Keys, plain: bytes) -> str:
    padded = plain + b"\0" * (-len(plain) % _BLOCK)
    iv = keys.iv(padded)
    return _b64(_V2 + iv + keys.crypt(iv, padded))


def _open_v2(keys: _Keys, raw: bytes) -> bytes | None:
    """The padded plaintext if `raw` (a decoded v2 token) was made with these keys."""
    iv, body = raw[1 : 1 + _TAG_BYTES], raw[1 + _TAG_BYTES :]
    padded = keys.crypt(iv, body)
    return padded if hmac.compare_digest(iv, keys.iv(padded)) else None


def _claim(padded: bytes) -> tuple[str, str] | None:
    try:
        list_id, address = padded.rstrip(b"\0").decode("utf-8").split("\n", 1)
    except (ValueError, UnicodeDecodeError):
        return None
    return list_id, address


class TokenSigner:
    """Makes tokens with the current secret; checks them against it and retired ones."""

    def __init__(
        self,
        secret: bytes,
        previous: Sequence[RetiredSecret] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._v2 = _Keys(secret)  # derived once: a send makes one token per subscriber
        self._keyed = hmac.new(secret, digestmod=hashlib.sha256)  # copied for each tag
        self._previous = tuple(previous)
        self._clock = clock

    @staticmethod
    def _tag_with(secret: bytes, payload: bytes) -> bytes:
        return hmac.new(secret, payload, hashlib.sha256).digest()[:_TAG_BYTES]

    def _tag(self, payload: bytes) -> bytes:
        keyed = self._keyed.copy()  # the key's pads are hashed once, not per tag
        keyed.update(payload)
        return keyed.digest()[:_TAG_BYTES]

    def make(self, list_id: str, address: str) -> str:
        """An opaque, URL-safe token for `list_id` and `address` (the same every time)."""
        return _seal_v2(self._v2, f"{list_id}\n{address.lower()}".encode())

    def make_v1(self, list_id: str, address: str) -> str:
        """A token in the old, readable format (only to test that such links still work)."""
        payload = f"{list_id}\n{address.lower()}".encode()
        return f"{_b64(payload)}.{_b64(self._tag(payload))}"

    def check(self, token: str) -> tuple[str, str] | Refusal:
        """(list_id, address) if the token is genuine and current, else why not."""
        if len(token) > MAX_TOKEN_CHARS:
            return Refusal.MALFORMED
        if "." not in token:
            return self._check_v2(token)
        if token.count(".") != 1:
            return Refusal.MALFORMED
        try:
            body, tag = token.split(".", 1)
            payload = _unb64(body)
            given = _unb64(tag)
            list_id, address = payload.decode("utf-8").split("\n", 1)
        except (ValueError, UnicodeDecodeError):
            return Refusal.MALFORMED
        if _b64(payload) != body or _b64(given) != tag:
            # the decoder skips stray characters and unused bits: only our own spelling counts
            return Refusal.MALFORMED
        # Constant-time comparison: the time taken says nothing about how much of a tag fits.
        if hmac.compare_digest(given, self._tag(payload)):
            return list_id, address
        now = self._clock()
        for old in self._previous:
            if hmac.compare_digest(given, self._tag_with(old.secret, payload)):
                return (list_id, address) if now < old.valid_until else Refusal.EXPIRED
        return Refusal.FORGED

    def verp(self, message_id: str) -> str:
        """The VERP token of one delivery: its Message-ID's local part and a tag, lower-case
        hex and dashes (MTAs may fold the case of an address), no address in it."""
        local = message_id.strip("<>").partition("@")[0].lower()
        tag = self._tag(b"verp\n" + local.encode()).hex()[:16]
        return f"{local.replace('.', '-')}-{tag}"

    def verp_message_local(self, token: str) -> str | None:
        """The Message-ID local part a genuine VERP token names (current secret), else None."""
        body, _, tag = token.lower().rpartition("-")
        local = body.replace("-", ".")
        if not body or len(token) > 200 or not re.fullmatch(r"[0-9a-f.]+", local):
            return None
        expected = self._tag(b"verp\n" + local.encode()).hex()[:16]
        return local if hmac.compare_digest(tag, expected) else None

    def _check_v2(self, token: str) -> tuple[str, str] | Refusal:
        try:
            raw = _unb64(token)
        except ValueError:
            return Refusal.MALFORMED
        body = len(raw) - 1 - _TAG_BYTES
        if _b64(raw) != token or raw[:1] != _V2 or body <= 0 or body % _BLOCK:
            return Refusal.MALFORMED
        padded = _open_v2(self._v2, raw)
        if padded is None:
            now = self._clock()
            for old in self._previous:
                padded = _open_v2(_Keys(old.secret), raw)
                if padded is not None:
                    if now >= old.valid_until:
                        return Refusal.EXPIRED
                    break
        if padded is None:
            return Refusal.FORGED
        return _claim(padded) or Refusal.MALFORMED

    def verify(self, token: str) -> tuple[str, str] | None:
        """(list_id, address) if the token is genuine, else None."""
        result = self.check(token)
        return None if isinstance(result, Refusal) else result


def unsubscribe_url(base_url: str, token: str) -> str:
    """`<base>/u/<token>`: the path the unsubscribe service answers."""
    return f"{base_url.rstrip('/')}/u/{token}"

"""Personal, tamper-proof unsubscribe tokens and the secret that signs them.

A token names the list and the address and carries an HMAC-SHA256 tag made with the
project secret kept in the state folder (created on first use, mode 0600, never in
the repo). It is URL-safe, so it can sit in `<unsubscribe.url>/u/<token>`.

Rotation (`rotate_secret`) makes a new current secret and keeps the old one in
`secret.retired` with the time until which its tokens stay valid (the grace period),
so links in messages already sent keep working for a while and then stop.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from kzmail.errors import StateError
from kzmail.private import private_folder

SECRET_FILE = "secret.key"  # noqa: S105 - a file name, not a secret
RETIRED_FILE = "secret.retired"
_TAG_BYTES = 16  # 128-bit tag: unforgeable, keeps URLs short
MAX_TOKEN_CHARS = 1024  # far above any real token; refuse bigger ones before decoding


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def load_secret(state_dir: Path) -> bytes:
    """Return the project secret, creating it (and the state folder) on first use."""
    path = state_dir / SECRET_FILE
    try:
        if path.exists():
            secret = bytes.fromhex(path.read_text(encoding="ascii").strip())
            if len(secret) < 32:
                raise StateError(f"{path}: secret is too short; delete it to make a new one")
            return secret
        private_folder(state_dir)
        secret = secrets.token_bytes(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secret.hex() + "\n")
        return secret
    except ValueError:
        raise StateError(f"{path}: secret is not valid hex; delete it to make a new one") from None
    except OSError as exc:
        raise StateError(f"cannot use the state folder {state_dir}: {exc}") from exc


@dataclass(frozen=True)
class RetiredSecret:
    """A former secret: its tokens are accepted until `valid_until` (Unix time)."""

    secret: bytes
    retired_at: float
    valid_until: float


class Refusal(Enum):
    """Why a token was not accepted."""

    MALFORMED = "malformed"   # not a token at all
    FORGED = "forged"         # no secret we know made this tag
    EXPIRED = "expired"       # made by a secret retired longer ago than its grace period


class TokenSigner:
    """Makes tokens with the current secret; checks them against it and retired ones."""

    def __init__(self, secret: bytes, previous: Sequence[RetiredSecret] = (),
                 clock: Callable[[], float] = time.time) -> None:
        self._secret = secret
        self._keyed = hmac.new(secret, digestmod=hashlib.sha256)   # copied for each tag
        self._previous = tuple(previous)
        self._clock = clock

    @staticmethod
    def _tag_with(secret: bytes, payload: bytes) -> bytes:
        return hmac.new(secret, payload, hashlib.sha256).digest()[:_TAG_BYTES]

    def _tag(self, payload: bytes) -> bytes:
        keyed = self._keyed.copy()          # the key's pads are hashed once, not per tag
        keyed.update(payload)
        return keyed.digest()[:_TAG_BYTES]

    def make(self, list_id: str, address: str) -> str:
        """A URL-safe token naming `list_id` and `address`."""
        payload = f"{list_id}\n{address.lower()}".encode()
        return f"{_b64(payload)}.{_b64(self._tag(payload))}"

    def check(self, token: str) -> tuple[str, str] | Refusal:
        """(list_id, address) if the token is genuine and current, else why not."""
        if len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
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

    def verify(self, token: str) -> tuple[str, str] | None:
        """(list_id, address) if the token is genuine, else None."""
        result = self.check(token)
        return None if isinstance(result, Refusal) else result


def _write_private(path: Path, text: str) -> None:
    """Replace `path` atomically with a file only the owner can read."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def load_retired(state_dir: Path) -> list[RetiredSecret]:
    """The retired secrets recorded in the state folder (oldest first)."""
    path = state_dir / RETIRED_FILE
    try:
        lines = path.read_text(encoding="ascii").splitlines() if path.exists() else []
        found = []
        for line in lines:
            if line.strip() and not line.startswith("#"):
                secret, retired_at, valid_until = line.split()
                found.append(RetiredSecret(bytes.fromhex(secret), float(retired_at),
                                           float(valid_until)))
        return found
    except ValueError:
        raise StateError(f"{path}: not a list of retired secrets (hex, retired_at, "
                         "valid_until per line)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StateError(f"cannot read {path}: {exc}") from exc


def load_signer(state_dir: Path, clock: Callable[[], float] = time.time) -> TokenSigner:
    """A signer with the current secret and every retired one (for checking tokens)."""
    return TokenSigner(load_secret(state_dir), load_retired(state_dir), clock)


def rotate_secret(state_dir: Path, grace_seconds: float,
                  clock: Callable[[], float] = time.time) -> RetiredSecret:
    """Make a new current secret; the old one stays valid for `grace_seconds`.

    Retired secrets whose grace period is over are dropped from the file. A grace period
    of 0 means "stop old links at once": every retired secret is dropped with it, or links
    from before an earlier rotation would outlive the ones just stopped.
    """
    if grace_seconds < 0:
        raise ValueError("grace period must not be negative")
    now = clock()
    old = RetiredSecret(load_secret(state_dir), now, now + grace_seconds)
    keep: list[RetiredSecret] = []
    if grace_seconds > 0:
        keep = [r for r in load_retired(state_dir) if r.valid_until > now] + [old]
    lines = ["# retired unsubscribe secrets: hex retired_at valid_until (Unix time)"]
    lines += [f"{r.secret.hex()} {r.retired_at:.3f} {r.valid_until:.3f}" for r in keep]
    try:
        _write_private(state_dir / RETIRED_FILE, "\n".join(lines) + "\n")
        _write_private(state_dir / SECRET_FILE, secrets.token_bytes(32).hex() + "\n")
    except OSError as exc:
        raise StateError(f"cannot rotate the secret in {state_dir}: {exc}") from exc
    return old


def unsubscribe_url(base_url: str, token: str) -> str:
    """`<base>/u/<token>`: the path the unsubscribe service answers."""
    return f"{base_url.rstrip('/')}/u/{token}"

"""Personal, tamper-proof unsubscribe tokens and the secret that signs them.

A token names the list and the address and carries an HMAC-SHA256 tag made with the
project secret kept in the state folder (created on first use, mode 0600, never in
the repo). It is URL-safe, so it can sit in `<unsubscribe.url>/u/<token>`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from .errors import StateError

SECRET_FILE = "secret.key"  # noqa: S105 - a file name, not a secret
_TAG_BYTES = 16  # 128-bit tag: unforgeable, keeps URLs short


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
        state_dir.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_bytes(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secret.hex() + "\n")
        return secret
    except ValueError:
        raise StateError(f"{path}: secret is not valid hex; delete it to make a new one") from None
    except OSError as exc:
        raise StateError(f"cannot use the state folder {state_dir}: {exc}") from None


class TokenSigner:
    """Makes and checks unsubscribe tokens for any list with one secret."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _tag(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()[:_TAG_BYTES]

    def make(self, list_id: str, address: str) -> str:
        """A URL-safe token naming `list_id` and `address`."""
        payload = f"{list_id}\n{address.lower()}".encode()
        return f"{_b64(payload)}.{_b64(self._tag(payload))}"

    def verify(self, token: str) -> tuple[str, str] | None:
        """(list_id, address) if the token is genuine, else None."""
        try:
            body, tag = token.split(".", 1)
            payload = _unb64(body)
            # Compare canonical text, not decoded bytes: base64's spare bits would otherwise
            # let a changed last character decode to the same tag and pass.
            if _b64(payload) != body:
                return None
            if not hmac.compare_digest(tag.encode("ascii"), _b64(self._tag(payload)).encode()):
                return None
            list_id, address = payload.decode("utf-8").split("\n", 1)
        except (ValueError, UnicodeDecodeError):
            return None
        return list_id, address


def unsubscribe_url(base_url: str, token: str) -> str:
    """`<base>/u/<token>`: the path the unsubscribe service answers."""
    return f"{base_url.rstrip('/')}/u/{token}"

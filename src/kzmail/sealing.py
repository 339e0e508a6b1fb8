"""Sealed boxes: what the public unsubscribe server records, readable only by the organiser.

The organiser's state holds an X25519 key pair (`seal.key`, 0600, made on first use); a
server bundle gets the public half only. `seal` encrypts a record to that public key with
a fresh ephemeral key (X25519, HKDF-SHA256, ChaCha20-Poly1305: the libsodium sealed box's
shape), so the server can write records it can never read back, and a seized server's
folder holds nothing but ciphertext. `open_sealed` needs the private key.

A record is a JSON object with a `kind` ("unsubscribe"; later kinds such as "signup" use
the same box) and the fields of that kind.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from kzmail.errors import StateError
from kzmail.private import private_folder

SEAL_KEY_FILE = "seal.key"
_RAW = serialization.Encoding.Raw
_NONCE = b"\0" * 12  # every box has its own ephemeral key, so one nonce per key


def _key(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    info = b"kzmail sealed box v1" + ephemeral + recipient
    return HKDF(hashes.SHA256(), 32, salt=None, info=info).derive(shared)


def _public_bytes(key: X25519PublicKey) -> bytes:
    return key.public_bytes(_RAW, serialization.PublicFormat.Raw)


def seal(public_key: bytes, record: Mapping[str, Any]) -> bytes:
    """`record` as JSON, encrypted so that only the holder of the private key can read it."""
    recipient = X25519PublicKey.from_public_bytes(public_key)
    ephemeral = X25519PrivateKey.generate()
    mine = _public_bytes(ephemeral.public_key())
    key = _key(ephemeral.exchange(recipient), mine, public_key)
    data = json.dumps(dict(record), ensure_ascii=True, separators=(",", ":")).encode()
    return mine + ChaCha20Poly1305(key).encrypt(_NONCE, data, None)


def open_sealed(private_key: bytes, box: bytes) -> dict[str, Any]:
    """The record in `box`; StateError if it was not sealed to this key or is damaged."""
    me = X25519PrivateKey.from_private_bytes(private_key)
    mine = _public_bytes(me.public_key())
    ephemeral, body = box[:32], box[32:]
    try:
        key = _key(me.exchange(X25519PublicKey.from_public_bytes(ephemeral)), ephemeral, mine)
        record = json.loads(ChaCha20Poly1305(key).decrypt(_NONCE, body, None))
    except (InvalidTag, ValueError) as exc:
        raise StateError("a sealed record is damaged or not sealed to this state's key") from exc
    if not isinstance(record, dict) or not isinstance(record.get("kind"), str):
        raise StateError("a sealed record has no kind")
    return record


def load_private(state_dir: Path) -> bytes:
    """The organiser's private sealing key, made (0600) on first use."""
    path = state_dir / SEAL_KEY_FILE
    try:
        if path.exists():
            return bytes.fromhex(path.read_text(encoding="ascii").strip())
        private_folder(state_dir)
        raw = X25519PrivateKey.generate().private_bytes(
            _RAW, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(raw.hex() + "\n")
        return raw
    except ValueError:
        raise StateError(f"{path}: not a sealing key (hex)") from None
    except OSError as exc:
        raise StateError(f"cannot use {path}: {exc.strerror or exc}") from exc


def public_of(private_key: bytes) -> bytes:
    """The public half of a private sealing key."""
    return _public_bytes(X25519PrivateKey.from_private_bytes(private_key).public_key())

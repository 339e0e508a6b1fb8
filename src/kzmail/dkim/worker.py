"""The DKIM private-key operation, and a process that does nothing else (see `dkim.pool`).

`sign_digest` signs the SHA-256 digest of a message's canonical signed headers: RSA with
PKCS#1 v1.5 over the pre-hashed digest (the same bytes as signing the headers themselves),
Ed25519 over the digest (RFC 8463 prescribes exactly that). `DkimSigner.sign` calls it
in-process; run as a script, this module answers requests for it over its pipes:

    parent -> worker   once: length (4 bytes, big-endian) + the key (unencrypted PEM)
    worker -> parent   once: HELLO, when the key is loaded
    parent -> worker   per message: sequence (4 bytes) + digest (32 bytes)
    worker -> parent   per message: sequence (4 bytes) + length (2 bytes) + signature

Replies come in request order, each written as soon as it is made. The worker imports only
the standard library and `cryptography` (it starts fast and is run by path, not as part of
the package); it ignores SIGINT (Ctrl-C is the parent's: it lets the messages in flight
finish, and they need signatures) and exits on EOF. It never writes the key anywhere.
"""

from __future__ import annotations

import os
import signal
import struct
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa, utils

Key = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

HELLO = b"KZSIGN1\n"
REQUEST = struct.Struct(">I32s")
REPLY = struct.Struct(">IH")
# replies to requests that arrived together go back in writes of up to this many: fewer
# wake-ups of the sending loop, and a lane waits for at most this many signatures
REPLIES_PER_WRITE = 4


def sign_digest(key: Key, digest: bytes) -> bytes:
    """The DKIM b= signature (raw bytes) for the SHA-256 `digest` of the signed headers."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(digest)
    return key.sign(digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))


def _read_exactly(size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = os.read(0, size - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return bytes(data)


def _write_all(data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(1, view) :]


def _load(pem: bytes) -> Key:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
        raise TypeError(f"DKIM needs an RSA or Ed25519 key, not {type(key).__name__}")
    return key


def serve() -> None:
    """Load the key from stdin, then answer requests until stdin ends."""
    key = _load(_read_exactly(int.from_bytes(_read_exactly(4), "big")))
    _write_all(HELLO)
    buffer = bytearray()
    while chunk := os.read(0, 1 << 16):
        buffer += chunk
        done = 0
        replies: list[bytes] = []
        while len(buffer) - done >= REQUEST.size:
            sequence, digest = REQUEST.unpack_from(buffer, done)
            done += REQUEST.size
            signature = sign_digest(key, digest)
            replies += (REPLY.pack(sequence, len(signature)), signature)
            if len(replies) >= 2 * REPLIES_PER_WRITE:
                _write_all(b"".join(replies))
                replies = []
        if replies:
            _write_all(b"".join(replies))
        del buffer[:done]


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        serve()
    except (EOFError, BrokenPipeError):
        return 0  # the parent went away: nothing left to do
    except Exception as exc:  # noqa: BLE001 - one line for the parent's error message
        # the exception's text, never the key: cryptography's messages do not quote it
        sys.stderr.write(f"{type(exc).__name__}: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

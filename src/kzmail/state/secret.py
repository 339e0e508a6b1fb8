"""The secret that signs unsubscribe links, kept in the state folder, and its rotation.

`load_secret` creates the current secret on first use (mode 0600, never in the repo);
`rotate_secret` makes a new one and keeps the old in `secret.retired` with the time until
which its tokens stay valid, so links in messages already sent keep working for a while
and then stop. `load_signer` hands both to a `TokenSigner`.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path

from kzmail.errors import StateError
from kzmail.private import private_folder
from kzmail.tokens import RetiredSecret, TokenSigner

SECRET_FILE = "secret.key"  # noqa: S105 - a file name, not a secret


RETIRED_FILE = "secret.retired"


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
                found.append(
                    RetiredSecret(bytes.fromhex(secret), float(retired_at), float(valid_until))
                )
        return found
    except ValueError:
        raise StateError(
            f"{path}: not a list of retired secrets (hex, retired_at, valid_until per line)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StateError(f"cannot read {path}: {exc}") from exc


def load_signer(state_dir: Path, clock: Callable[[], float] = time.time) -> TokenSigner:
    """A signer with the current secret and every retired one (for checking tokens)."""
    return TokenSigner(load_secret(state_dir), load_retired(state_dir), clock)


def rotate_secret(
    state_dir: Path, grace_seconds: float, clock: Callable[[], float] = time.time
) -> RetiredSecret:
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

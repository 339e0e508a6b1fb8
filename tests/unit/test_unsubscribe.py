"""Signed unsubscribe tokens and the secret in the state folder."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from kzmail.errors import StateError
from kzmail.state.secret import SECRET_FILE, load_secret
from kzmail.tokens import TokenSigner, unsubscribe_url


def test_secret_is_created_once_private_and_reused(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = load_secret(state)
    assert len(first) == 32
    mode = stat.S_IMODE((state / SECRET_FILE).stat().st_mode)
    assert mode == 0o600
    assert load_secret(state) == first


def test_corrupt_secret_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / SECRET_FILE).write_text("not hex")
    with pytest.raises(StateError, match="delete it"):
        load_secret(tmp_path)


def test_token_round_trip_and_url_safety() -> None:
    signer = TokenSigner(b"k" * 32)
    token = signer.make("list.example.org", "Anna@Example.org")
    assert signer.verify(token) == ("list.example.org", "anna@example.org")
    assert all(c.isalnum() or c in "-_." for c in token)
    assert unsubscribe_url("https://x.example.org/", token) == f"https://x.example.org/u/{token}"


def test_tampered_or_foreign_tokens_are_refused() -> None:
    signer = TokenSigner(b"k" * 32)
    token = signer.make_v1("list.example.org", "anna@example.org")
    body, tag = token.split(".")
    flipped = tag[:-1] + ("A" if tag[-1] != "A" else "B")
    assert signer.verify(f"{body}.{flipped}") is None
    other = TokenSigner(b"j" * 32).make("list.example.org", "anna@example.org")
    assert signer.verify(other) is None
    forged_list = TokenSigner(b"k" * 32).make_v1("other.example.org", "anna@example.org")
    assert signer.verify(forged_list.split(".")[0] + "." + tag) is None
    assert signer.verify("garbage") is None
    assert signer.verify("") is None

"""Unsubscribe tokens: tamper-proof, list-bound, constant-time checked, URL-safe, rotatable."""

from __future__ import annotations

import base64
import hmac
import re
from pathlib import Path
from urllib.parse import quote

import pytest

from kzmail import tokens as unsubscribe
from kzmail.errors import StateError
from kzmail.state.secret import load_retired, load_signer, rotate_secret
from kzmail.tokens import Refusal, TokenSigner

SECRET = bytes(range(32))
LIST_A = "a.news.example.org"
LIST_B = "b.news.example.org"


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_token_round_trips_list_and_lowercased_address() -> None:
    signer = TokenSigner(SECRET)
    token = signer.make(LIST_A, "Jane.Doe@Example.org")
    assert signer.check(token) == (LIST_A, "jane.doe@example.org")
    assert signer.verify(token) == (LIST_A, "jane.doe@example.org")


def test_every_single_changed_character_is_refused() -> None:
    signer = TokenSigner(SECRET)
    token = signer.make(LIST_A, "jane@example.org")
    tried = 0
    for i, char in enumerate(token):
        for other in "AbZ09-_.!+/=~":
            if other != char:
                changed = token[:i] + other + token[i + 1 :]
                assert isinstance(signer.check(changed), Refusal), (i, changed)
                tried += 1
    assert tried > 10 * len(token)
    assert isinstance(signer.check(token + "A"), Refusal)
    assert isinstance(signer.check(token[:-1]), Refusal)


def b64(data: bytes) -> str:
    """A token part as the format spells it: URL-safe base64 without padding (RFC 4648)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def test_token_for_one_list_cannot_name_another() -> None:
    signer = TokenSigner(SECRET)
    token_a = signer.make_v1(LIST_A, "jane@example.org")
    _body, tag = token_a.split(".")
    # keep A's tag, swap in a payload naming list B: the tag no longer fits
    forged = b64(f"{LIST_B}\njane@example.org".encode()) + "." + tag
    assert signer.check(forged) is Refusal.FORGED
    assert signer.check(token_a) == (LIST_A, "jane@example.org")
    assert signer.make(LIST_B, "jane@example.org") != token_a


def test_token_reveals_nothing_of_the_address_without_the_secret() -> None:
    signer = TokenSigner(SECRET)
    for address in ("jane@example.org", "Jane.Doe@Example.org", "ayse.yilmaz@example.net"):
        token = signer.make(LIST_A, address)
        decoded = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        for needle in (address, address.lower(), address.split("@")[0].lower(), LIST_A):
            for form in (needle, quote(needle, safe=""), b64(needle.encode())):
                assert form not in token
                assert form.encode() not in decoded
        assert signer.check(token) == (LIST_A, address.lower())
        assert signer.make(LIST_A, address) == token  # the same link in every message
    # lengths differ only by whole 16-byte blocks
    short, longer = signer.make(LIST_A, "a@b.org"), signer.make(LIST_A, "ab@b.org")
    assert len(short) == len(longer)


def test_old_format_tokens_from_messages_already_sent_still_work() -> None:
    """A link as kzmail made it before opaque tokens: base64 of the payload, a dot, the tag,
    built here by hand as that code did (HMAC-SHA256 of the payload, 16 bytes)."""
    payload = f"{LIST_A}\njane@example.org".encode()
    tag = hmac.new(SECRET, payload, "sha256").digest()[:16]
    old = f"{b64(payload)}.{b64(tag)}"
    signer = TokenSigner(SECRET)
    assert signer.check(old) == (LIST_A, "jane@example.org")
    assert signer.make_v1(LIST_A, "jane@example.org") == old
    assert isinstance(TokenSigner(b"y" * 32).check(old), Refusal)


def test_every_changed_character_of_an_opaque_token_is_refused() -> None:
    signer = TokenSigner(SECRET)
    token = signer.make(LIST_A, "jane@example.org")
    for i, char in enumerate(token):
        for other in "AbZ09-_.":
            if other != char:
                changed = token[:i] + other + token[i + 1 :]
                assert isinstance(signer.check(changed), Refusal), (i, changed)


def test_other_secret_and_garbage_are_refused() -> None:
    token = TokenSigner(b"x" * 32).make(LIST_A, "jane@example.org")
    signer = TokenSigner(SECRET)
    assert signer.check(token) is Refusal.FORGED
    for bad in ("", ".", "abc", "a.b.c", "!!!.###", "x" * 5000 + ".y", "YQ.YQ"):
        assert isinstance(signer.check(bad), Refusal), bad
        assert signer.verify(bad) is None


def test_tags_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    # a spy around the real function: the tag must be compared by hmac.compare_digest,
    # never with ==, which returns at the first differing byte
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    signer = TokenSigner(SECRET)
    token = signer.make(LIST_A, "jane@example.org")
    assert signer.check(token) == (LIST_A, "jane@example.org")
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert isinstance(signer.check(forged), Refusal)
    assert len(calls) == 2
    assert all(len(a) == len(b) == 16 for a, b in calls)


@pytest.mark.parametrize(
    "address",
    [
        "jane@example.org",
        "o'brien+news/2024@example.org",
        "ÿ?&=#%@example.org",
        "a" * 64 + "@" + "b" * 180 + ".example",
        "x~y!z$@example.org",
    ],
)
def test_tokens_are_url_safe(address: str) -> None:
    token = TokenSigner(SECRET).make("list-1.example.org", address)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token)
    assert quote(token, safe="") == token  # nothing for a URL or mail client to escape
    url = unsubscribe.unsubscribe_url("https://news.example.org/", token)
    assert url == f"https://news.example.org/u/{token}"


def test_rotation_keeps_old_tokens_for_the_grace_period(tmp_path: Path) -> None:
    clock = Clock()
    before = load_signer(tmp_path, clock)
    old_token = before.make(LIST_A, "jane@example.org")
    retired = rotate_secret(tmp_path, grace_seconds=3600, clock=clock)
    assert retired.valid_until == clock.now + 3600
    after = load_signer(tmp_path, clock)
    new_token = after.make(LIST_A, "jane@example.org")
    assert new_token != old_token
    assert after.check(old_token) == (LIST_A, "jane@example.org")
    assert after.check(new_token) == (LIST_A, "jane@example.org")
    assert before.check(new_token) is Refusal.FORGED
    clock.now += 3601
    assert after.check(old_token) is Refusal.EXPIRED
    assert after.check(new_token) == (LIST_A, "jane@example.org")
    assert (tmp_path / "secret.retired").stat().st_mode & 0o077 == 0
    assert (tmp_path / "secret.key").stat().st_mode & 0o077 == 0


def test_rotating_twice_keeps_both_old_secrets_and_drops_expired(tmp_path: Path) -> None:
    clock = Clock()
    first = load_signer(tmp_path, clock).make(LIST_A, "a@example.org")
    rotate_secret(tmp_path, 100, clock)
    second = load_signer(tmp_path, clock).make(LIST_A, "a@example.org")
    clock.now += 50
    rotate_secret(tmp_path, 100, clock)
    signer = load_signer(tmp_path, clock)
    assert signer.check(first) == signer.check(second) == (LIST_A, "a@example.org")
    clock.now += 60  # the first secret's grace is over
    rotate_secret(tmp_path, 100, clock)  # and rotation prunes it from the file
    assert len(load_retired(tmp_path)) == 2
    assert load_signer(tmp_path, clock).check(first) is Refusal.FORGED


def test_zero_grace_stops_old_links_at_once(tmp_path: Path) -> None:
    token = load_signer(tmp_path).make(LIST_A, "a@example.org")
    rotate_secret(tmp_path, 0)
    assert load_signer(tmp_path).check(token) is Refusal.FORGED


def test_damaged_retired_file_is_a_state_error(tmp_path: Path) -> None:
    load_signer(tmp_path)
    (tmp_path / "secret.retired").write_text("not hex at all\n", encoding="ascii")
    with pytest.raises(StateError, match=r"secret\.retired"):
        load_signer(tmp_path)

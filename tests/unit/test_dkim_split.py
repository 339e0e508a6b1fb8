"""DKIM signing in two halves (`prepare`, key operation on the digest, `finish`) makes exactly
the bytes that signing in one go makes, and what the message factory defers it seals."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import dkim as dkimpy
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from kzmail import campaign_file as campaign
from kzmail.dkim.signer import DkimSigner, public_record
from kzmail.dkim.worker import Key, sign_digest
from kzmail.models import DkimSettings, Rendered, Subscriber
from kzmail.render.message import MessageFactory

DOMAIN = "arbeiterinnenmacht.example.org"
MESSAGE = (
    b"From: Gruppe <newsletter@arbeiterinnenmacht.example.org>\r\nTo: a@example.org\r\n"
    b"Subject: x\r\nDate: Thu, 1 Jan 2026 00:00:00 +0000\r\n\r\nHallo  \r\nWelt\r\n"
)


@pytest.fixture(scope="module", params=["rsa", "ed25519"])
def key(request: pytest.FixtureRequest) -> Key:
    if request.param == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ed25519.Ed25519PrivateKey.generate()


def _signer(key: Key) -> DkimSigner:
    settings = DkimSettings(domain=DOMAIN, selector="s", key_file=Path("unused.pem"))
    return DkimSigner(settings, key, clock=lambda: 1_700_000_000.0)


def verifies(key: Key, message: bytes) -> bool:
    record = public_record(key).encode()
    return bool(dkimpy.verify(message, dnsfunc=lambda name, timeout=5: record))


def test_digest_signature_is_the_signature_over_the_bytes() -> None:
    # Prehashed PKCS#1 v1.5 over SHA-256(data) is byte for byte RSA-SHA256 over data
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rng = random.Random(6376)
    for size in (0, 1, 100, 5000):
        data = rng.randbytes(size)
        assert sign_digest(key, hashlib.sha256(data).digest()) == key.sign(
            data, padding.PKCS1v15(), hashes.SHA256()
        )


def test_prepare_then_finish_equals_sign(key: Key) -> None:
    signer = _signer(key)
    unsigned = signer.prepare(MESSAGE)
    assert len(unsigned.digest) == 32
    assert unsigned.message == MESSAGE
    split = signer.finish(unsigned, sign_digest(key, unsigned.digest))
    assert split == signer.sign(MESSAGE)  # both algorithms are deterministic
    assert split.endswith(MESSAGE)
    assert verifies(key, split)


def test_deferred_message_sealed_later_verifies(project: Path, key: Key) -> None:
    c = campaign.load(project / "campaigns/kasachstan.yaml")
    factory = MessageFactory(c, mailto=c.unsubscribe.mailto, static_text=[], signer=_signer(key))
    parts = Rendered.of(html="<p>Hallo Jürgen</p>", text="Hallo Jürgen\n")
    person = Subscriber("juergen@example.org", "Jürgen Müller")
    deferred = factory.build(person, parts, "https://news.example.org/u/t", defer_signature=True)
    assert deferred.unsigned is not None
    assert b"DKIM-Signature" not in deferred.data
    sealed = factory.seal(deferred, sign_digest(key, deferred.unsigned.digest))
    assert sealed.unsigned is None
    assert sealed.wire_safe
    assert sealed.data.startswith(b"DKIM-Signature:")
    assert sealed.data.endswith(deferred.data)
    assert (sealed.recipient, sealed.message_id) == (deferred.recipient, deferred.message_id)
    assert verifies(key, sealed.data)
    # without deferring, the factory still signs at once
    direct = factory.build(person, parts, "https://news.example.org/u/t")
    assert direct.unsigned is None
    assert verifies(key, direct.data)
    with pytest.raises(ValueError, match="not waiting"):
        factory.seal(direct, b"x")

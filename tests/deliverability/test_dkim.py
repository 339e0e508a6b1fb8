"""DKIM: what kzmail signs verifies with OpenDKIM and with dkimpy (someone else's code), for
RSA-2048 and Ed25519; a one-byte change of the body or of a signed header breaks it."""

from __future__ import annotations

import random
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import dkim as dkimpy
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from typer.testing import CliRunner

from kzmail import campaign_file
from kzmail.cli.common import current_workspace
from kzmail.cli.main import cli
from kzmail.dkim.signer import (
    DkimSigner,
    check_key,
    load_key,
    public_record,
    relaxed_body,
    relaxed_header,
)
from kzmail.errors import CampaignError
from kzmail.models import DkimSettings
from kzmail.services import send
from tests.helpers.campaigns import copy_project, use_relay
from tests.helpers.deliverability import Example, build_all, tool
from tests.helpers.images import with_article_image
from tests.helpers.smtp import SmtpServer

DOMAIN = "arbeiterinnenmacht.example.org"
FROM = "Gruppe <newsletter@arbeiterinnenmacht.example.org>"


@dataclass(frozen=True)
class Keys:
    folder: Path
    rsa: Path
    ed25519: Path
    records: dict[str, str]  # selector -> TXT record
    conf: Path  # opendkim configuration using the local key file, no DNS


def _pem(key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    folder = tmp_path_factory.mktemp("dkim-keys")
    # The RSA key comes from OpenDKIM's own generator, the Ed25519 one from cryptography.
    subprocess.run(
        [tool("opendkim-genkey"), "-b", "2048", "-d", DOMAIN, "-s", "news", "-D", str(folder)],
        check=True,
    )
    ed = folder / "ed.private"
    ed.write_bytes(_pem(ed25519.Ed25519PrivateKey.generate()))
    records = {
        "news": public_record(load_key(folder / "news.private")),
        "ed": public_record(load_key(ed)),
    }
    # opendkim-genkey's own record must agree with ours: same public key.
    genkey_txt = (folder / "news.txt").read_text()
    assert (
        "".join(re.findall(r'"([^"]*)"', genkey_txt)).split("p=")[1]
        == records["news"].split("p=")[1]
    )
    table = folder / "keys.txt"
    table.write_text("".join(f"{s}._domainkey.{DOMAIN} {r}\n" for s, r in records.items()))
    conf = folder / "opendkim.conf"
    conf.write_text(f"Mode v\nTestPublicKeys {table}\nSyslog no\nLogResults yes\n")
    return Keys(folder, folder / "news.private", ed, records, conf)


def opendkim(keys: Keys, message: bytes, tmp: Path) -> str:
    """OpenDKIM's verdict line for one message (it always exits 0; the verdict is printed)."""
    path = tmp / "message.eml"
    path.write_bytes(message)
    done = subprocess.run(
        [tool("opendkim", "/usr/sbin/opendkim"), "-x", str(keys.conf), "-t", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return (done.stdout + done.stderr).strip()


def verified_by_opendkim(keys: Keys, message: bytes, tmp: Path) -> bool:
    verdict = opendkim(keys, message, tmp)
    assert "verification" in verdict, verdict
    return "succeeded" in verdict


def verified_by_dkimpy(keys: Keys, message: bytes) -> bool:
    def dns(name: bytes, timeout: int = 5) -> bytes:
        selector = name.decode().split(".", 1)[0]
        return keys.records[selector].encode()

    return bool(dkimpy.verify(message, dnsfunc=dns))


def _signed_campaign(root: Path, key: Path, selector: str, *, photo: bool = False) -> Example:
    campaign = copy_project(root)
    if photo:
        with_article_image(campaign)
    with campaign.open("a", encoding="utf-8") as out:
        out.write(f"\ndkim:\n  domain: {DOMAIN}\n  selector: {selector}\n  key_file: {key}\n")
    return build_all(campaign, root / ".kzmail")


@pytest.fixture(scope="session", params=["rsa", "ed25519"])
def signed(
    request: pytest.FixtureRequest, keys: Keys, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Example]:
    """The example campaign with a `dkim:` key, every message built through `app.prepare`."""
    key, selector = (keys.rsa, "news") if request.param == "rsa" else (keys.ed25519, "ed")
    return request.param, _signed_campaign(tmp_path_factory.mktemp("signed"), key, selector)


def _header(message: bytes, name: str) -> bytes:
    match = re.search(rb"(?im)^" + name.encode() + rb":([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)", message)
    assert match, name
    return match.group(1)


def test_relaxed_canonicalisation_is_rfc6376_example() -> None:
    # RFC 6376 section 3.4.5
    assert relaxed_header("a", b" X") + relaxed_header("b", b" Y\t\r\n\tZ  ") == b"a:X\r\nb:Y Z\r\n"
    assert relaxed_body(b" C \r\nD \t E\r\n\r\n\r\n") == b" C\r\nD E\r\n"
    assert relaxed_body(b"") == b""


def test_fast_body_canonicalisation_equals_the_plain_definition() -> None:
    # relaxed_body skips regexes for speed; it must still say exactly what RFC 6376 says
    def reference(body: bytes) -> bytes:
        body = re.sub(rb"[ \t]+\r\n", b"\r\n", re.sub(rb"[ \t]+", b" ", body))
        body = re.sub(rb"(\r\n)+\Z", b"", body)
        return body + b"\r\n" if body else b""

    rng = random.Random(6376)
    for _ in range(5000):
        body = bytes(rng.choice(b"   \t\n\nab=\r") for _ in range(rng.randint(0, 40)))
        body = body.replace(b"\n", b"\r\n") if rng.random() < 0.9 else body  # stray CR/LF too
        assert relaxed_body(body) == reference(body), body


def test_every_message_verifies_with_opendkim(
    signed: tuple[str, Example], keys: Keys, tmp_path: Path
) -> None:
    algorithm, example = signed
    expected = "a=rsa-sha256" if algorithm == "rsa" else "a=ed25519-sha256"
    for built in example.built:
        assert built.message.data.startswith(b"DKIM-Signature:")
        assert expected.encode() in built.message.data[:200]
        assert verified_by_opendkim(keys, built.message.data, tmp_path), built.subscriber.email


def test_a_message_with_an_inline_photo_verifies_with_opendkim(keys: Keys, tmp_path: Path) -> None:
    example = _signed_campaign(tmp_path, keys.rsa, "news", photo=True)
    for built in example.built:
        assert (
            b"multipart/related" in built.message.data
            and b"Content-ID: <img1." in built.message.data
        )
        assert verified_by_opendkim(keys, built.message.data, tmp_path), built.subscriber.email
        assert verified_by_dkimpy(keys, built.message.data)
    # the signature covers the image: one changed base64 character breaks it
    data = example.built[0].message.data
    at = data.index(b"Content-ID: <img1.")
    at = data.index(b"\r\n\r\n", at) + 10
    broken = data[:at] + (b"B" if data[at : at + 1] != b"B" else b"C") + data[at + 1 :]
    assert not verified_by_opendkim(keys, broken, tmp_path)


def test_every_message_verifies_with_dkimpy(signed: tuple[str, Example], keys: Keys) -> None:
    for built in signed[1].built:
        assert verified_by_dkimpy(keys, built.message.data), built.subscriber.email


def test_rsa_key_is_2048_bits(keys: Keys, signed: tuple[str, Example], tmp_path: Path) -> None:
    verdict = opendkim(keys, signed[1].built[0].message.data, tmp_path)
    if signed[0] == "rsa":
        assert "2048-bit key" in verdict
    else:
        assert "s=ed," in verdict


def _flip_body_byte(message: bytes) -> bytes:
    index = message.index(b"Kasachstan", message.index(b"\r\n\r\n"))
    return message[:index] + b"L" + message[index + 1 :]


def test_one_byte_body_change_fails(
    signed: tuple[str, Example], keys: Keys, tmp_path: Path
) -> None:
    message = signed[1].built[0].message.data
    broken = _flip_body_byte(message)
    assert len(broken) == len(message)
    assert not verified_by_opendkim(keys, broken, tmp_path)
    assert not verified_by_dkimpy(keys, broken)


@pytest.mark.parametrize(
    "name",
    [
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
        "Subject",
        "To",
        "From",
        "Date",
        "Message-ID",
        "List-Id",
    ],
)
def test_one_byte_change_in_a_signed_header_fails(
    signed: tuple[str, Example], keys: Keys, tmp_path: Path, name: str
) -> None:
    message = signed[1].built[0].message.data
    value = _header(message, name)
    position = re.search(rb"[A-Za-z0-9]", value)
    assert position
    flipped = bytearray(value)
    flipped[position.start()] ^= 0x01  # e.g. "h" <-> "i": one byte, still a valid header
    broken = message.replace(name.encode() + b":" + value, name.encode() + b":" + flipped, 1)
    assert broken != message
    assert len(broken) == len(message)
    assert not verified_by_opendkim(keys, broken, tmp_path), name
    assert not verified_by_dkimpy(keys, broken), name


def test_signature_covers_list_unsubscribe_headers(signed: tuple[str, Example]) -> None:
    message = signed[1].built[0].message.data
    h_tag = re.search(rb"h=([^;]*);", _header(message, "DKIM-Signature"))
    assert h_tag
    names = [n.strip().lower() for n in re.sub(rb"\s+", b"", h_tag.group(1)).split(b":")]
    for name in (
        b"from",
        b"to",
        b"subject",
        b"date",
        b"message-id",
        b"list-id",
        b"list-unsubscribe",
        b"list-unsubscribe-post",
        b"mime-version",
        b"content-type",
        b"reply-to",
    ):
        assert name in names, name
    # over-signed: a second From, Subject or List-Unsubscribe cannot be added later
    for name in (b"from", b"subject", b"list-unsubscribe", b"list-unsubscribe-post"):
        assert names.count(name) == 2, name
    assert names.count(b"message-id") == 1


def test_an_added_header_copy_breaks_the_signature(
    signed: tuple[str, Example], keys: Keys, tmp_path: Path
) -> None:
    message = signed[1].built[0].message.data
    for extra in (
        b"From: Mallory <m@evil.example>\r\n",
        b"List-Unsubscribe: <https://evil.example/u>\r\n",
    ):
        broken = extra + message
        assert not verified_by_opendkim(keys, broken, tmp_path), extra
        assert not verified_by_dkimpy(keys, broken), extra


def test_absent_reply_to_cannot_be_added(keys: Keys, tmp_path: Path) -> None:
    signer = DkimSigner(DkimSettings(domain=DOMAIN, selector="ed", key_file=keys.ed25519))
    message = signer.sign(f"From: {FROM}\r\nTo: a@example.org\r\nSubject: x\r\n\r\nb\r\n".encode())
    assert verified_by_opendkim(keys, message, tmp_path)
    assert not verified_by_opendkim(keys, b"Reply-To: m@evil.example\r\n" + message, tmp_path)


def test_signed_messages_survive_a_real_smtp_send(
    keys: Keys, project: Path, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    campaign = project / "campaigns" / "kasachstan.yaml"
    use_relay(campaign, smtp_server)
    with campaign.open("a", encoding="utf-8") as out:
        out.write(f"\ndkim:\n  domain: {DOMAIN}\n  selector: news\n  key_file: {keys.rsa}\n")
    result = send.send(current_workspace(), campaign, confirm=lambda _: True)
    received = smtp_server.handler.messages
    assert result.report.sent == len(received) >= 10
    for item in received:
        assert verified_by_opendkim(keys, item.data, tmp_path), item.rcpt_tos


def test_unsigned_header_may_be_added_by_relays(
    signed: tuple[str, Example], keys: Keys, tmp_path: Path
) -> None:
    # a control for the test above: relays add Received; that must not break anything
    broken = b"Received: from relay.example by mx.example; Thu, 1 Jan 2026 00:00:00 +0000\r\n"
    assert verified_by_opendkim(keys, broken + signed[1].built[0].message.data, tmp_path)


def test_without_dkim_key_nothing_is_signed(example: Example) -> None:
    assert all(b"DKIM-Signature" not in b.message.data for b in example.built)


def test_signer_prepares_once_and_is_stable(keys: Keys) -> None:
    settings = DkimSettings(domain=DOMAIN, selector="ed", key_file=keys.ed25519)
    signer = DkimSigner(settings, clock=lambda: 1_700_000_000.0)
    message = (f"From: {FROM}\r\nTo: a@example.org\r\nSubject: x\r\n\r\nbody\r\n").encode()
    first, second = signer.sign(message), signer.sign(message)
    assert first == second  # Ed25519 is deterministic, t= from the clock
    assert b"t=1700000000;" in first
    assert all(len(line) <= 78 for line in first.split(b"\r\n"))
    assert verified_by_dkimpy(keys, first)


# --- campaign settings and check_key -------------------------------------------------------


def _campaign_with(tmp_path: Path, block: str) -> Path:
    campaign = copy_project(tmp_path)
    with campaign.open("a", encoding="utf-8") as out:
        out.write("\n" + block)
    return campaign


def test_missing_key_file_names_file_line_and_key(tmp_path: Path) -> None:
    campaign = _campaign_with(
        tmp_path, "dkim:\n  domain: a.example\n  selector: s\n  key_file: nowhere.pem\n"
    )
    with pytest.raises(CampaignError) as info:
        campaign_file.load(campaign)
    lines = campaign.read_text().splitlines()
    assert info.value.key == "dkim.key_file"
    assert info.value.line is not None
    assert "key_file" in lines[info.value.line - 1]
    assert "not found" in str(info.value)


@pytest.mark.parametrize(
    "content", [b"not a key", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"]
)
def test_invalid_key_is_a_campaign_error(tmp_path: Path, content: bytes) -> None:
    campaign = _campaign_with(
        tmp_path, "dkim:\n  domain: a.example\n  selector: s\n  key_file: bad.pem\n"
    )
    (campaign.parent / "bad.pem").write_bytes(content)
    with pytest.raises(CampaignError) as info:
        campaign_file.load(campaign)
    assert info.value.key == "dkim.key_file"
    assert info.value.line
    assert "PEM private key" in str(info.value)


def test_cli_reports_a_bad_key_in_one_line(project: Path) -> None:
    campaign = project / "campaigns" / "kasachstan.yaml"
    with campaign.open("a", encoding="utf-8") as out:
        out.write("\ndkim:\n  domain: a.example\n  selector: s\n  key_file: bad.pem\n")
    (campaign.parent / "bad.pem").write_text("not a key")
    result = CliRunner().invoke(cli, ["preview", str(campaign)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "kasachstan.yaml:" in result.output
    assert "dkim.key_file" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_invalid_selector_is_a_campaign_error(tmp_path: Path, keys: Keys) -> None:
    campaign = _campaign_with(
        tmp_path, f"dkim:\n  domain: a.example\n  selector: 'bad sel'\n  key_file: {keys.ed25519}\n"
    )
    with pytest.raises(CampaignError) as info:
        campaign_file.load(campaign)
    assert info.value.key == "dkim.selector"


def test_check_key_accepts_a_good_aligned_key(keys: Keys) -> None:
    settings = DkimSettings(domain=DOMAIN, selector="news", key_file=keys.rsa)
    assert check_key(settings, FROM) == []
    assert check_key(settings, FROM, published=keys.records["news"]) == []
    sub = DkimSettings(domain="example.org", selector="ed", key_file=keys.ed25519)
    assert check_key(sub, FROM) == []  # From's domain is below d=: relaxed alignment


def test_check_key_reports_each_problem(keys: Keys, tmp_path: Path) -> None:
    settings = DkimSettings(domain="other.example", selector="news", key_file=keys.rsa)
    assert any("not aligned" in p for p in check_key(settings, FROM))
    good = DkimSettings(domain=DOMAIN, selector="news", key_file=keys.rsa)
    wrong = check_key(good, FROM, published=keys.records["ed"])
    assert len(wrong) == 1
    assert "does not match" in wrong[0]
    assert keys.records["news"] in wrong[0]
    short = tmp_path / "short.pem"
    short.write_bytes(_pem(rsa.generate_private_key(public_exponent=65537, key_size=1024)))
    weak = DkimSettings(domain=DOMAIN, selector="news", key_file=short)
    assert any("1024 bits" in p for p in check_key(weak, FROM))
    missing = DkimSettings(domain=DOMAIN, selector="news", key_file=tmp_path / "none.pem")
    assert any("cannot read" in p for p in check_key(missing, FROM))

"""`unsubscribes import` acts on a reply only when it is shown to come from the subscriber.

Proof is the receiving server's Authentication-Results (from an authserv-id the organiser
names, DKIM or SPF aligned with From) or the reply carrying the List-Unsubscribe token;
anything else is reported "not verified" unless `--trust-from`.
"""

from __future__ import annotations

import email
import email.policy
import mailbox
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from typer.testing import CliRunner

from kzmail import tokens
from kzmail.cli.common import current_workspace
from kzmail.cli.main import cli
from kzmail.state.journal import Journal
from kzmail.state.secret import load_signer

LIST = "kasachstan.newsletter.arbeiterinnenmacht.example.org"
VICTIM = "aktivistin@example.org"
MX = "mx.arbeiterinnenmacht.example.org"


def _reply(
    headers: str = "",
    subject: str = "unsubscribe",
    body: str = "Bitte abmelden.",
    sender: str = VICTIM,
) -> bytes:
    return (
        f"{headers}From: {sender}\r\nTo: abmelden@arbeiterinnenmacht.example.org\r\n"
        f"Subject: {subject}\r\nMessage-ID: <1@x>\r\n\r\n{body}\r\n"
    ).encode()


def _ar(authserv: str, results: str) -> str:
    return f"Authentication-Results: {authserv};\r\n {results}\r\n"


def _import(project: Path, data: bytes, *args: str, maildir: bool = False) -> str:
    if maildir:
        box: mailbox.Mailbox[mailbox.Message] = mailbox.Maildir(project / "in", create=True)
    else:
        box = mailbox.mbox(project / "in")
    box.add(data)
    box.close()
    result = CliRunner().invoke(cli, ["unsubscribes", "import", "in", *args])
    assert result.exit_code == 0, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result.output


def _suppressed() -> set[str]:
    journal = Journal(current_workspace().state)
    try:
        return {address for _, address, _, _ in journal.suppressions()}
    finally:
        journal.close()


def test_forged_from_without_authentication_results_is_not_acted_on(project: Path) -> None:
    output = _import(project, _reply(), "--authserv-id", MX)
    assert _suppressed() == set()
    assert "not verified (" in output
    assert VICTIM in output
    assert "1 not verified" in output.replace("\n", " ")


def test_results_from_a_foreign_authserv_id_do_not_count(project: Path) -> None:
    forged = _ar(
        "mx.attacker.example",
        "dkim=pass header.d=example.org; spf=pass smtp.mailfrom=aktivistin@example.org",
    )
    _import(project, _reply(forged), "--authserv-id", MX, maildir=True)
    assert _suppressed() == set()


def test_no_authserv_id_named_means_no_header_counts(project: Path) -> None:
    _import(project, _reply(_ar(MX, "dkim=pass header.d=example.org")))
    assert _suppressed() == set()


def test_aligned_dkim_pass_from_the_named_server_is_acted_on(project: Path) -> None:
    good = _ar(
        MX,
        "spf=none smtp.mailfrom=x@elsewhere.example;\r\n"
        " dkim=pass (2048-bit key) header.d=mail.example.org header.s=s1",
    )
    output = _import(project, _reply(good), "--authserv-id", MX, maildir=True)
    assert _suppressed() == {VICTIM}
    assert "suppressed " + VICTIM in output  # `kzmail inbox`'s words: it is an alias now


def test_aligned_spf_pass_is_acted_on(project: Path) -> None:
    _import(
        project, _reply(_ar(MX, "spf=pass smtp.mailfrom=bounce@example.org")), "--authserv-id", MX
    )
    assert _suppressed() == {VICTIM}


def test_dkim_pass_for_another_domain_is_not_acted_on(project: Path) -> None:
    bad = _ar(
        MX,
        "dkim=pass header.d=attacker.example; spf=pass "
        "smtp.mailfrom=a@attacker.example; dkim=fail header.d=example.org",
    )
    _import(project, _reply(bad), "--authserv-id", MX)
    assert _suppressed() == set()


def test_a_top_level_domain_is_not_aligned(project: Path) -> None:
    _import(project, _reply(_ar(MX, "dkim=pass header.d=org")), "--authserv-id", MX)
    assert _suppressed() == set()


def test_a_forged_header_below_the_receivers_one_does_not_count(project: Path) -> None:
    # the receiving server's own verdict is on top; the sender's forgery further down
    headers = (
        _ar(MX, "dkim=fail header.d=example.org; spf=fail smtp.mailfrom=example.org")
        + "Received: from mx.attacker.example by mx.arbeiterinnenmacht.example.org\r\n"
        + _ar(MX, "dkim=pass header.d=example.org")
    )
    _import(project, _reply(headers), "--authserv-id", MX)
    assert _suppressed() == set()


def test_the_unsubscribe_token_in_the_reply_is_acted_on(project: Path) -> None:
    token = load_signer(current_workspace().state).make(LIST, VICTIM)
    _import(project, _reply(subject=f"Re: unsubscribe {token}"))
    assert _suppressed() == {VICTIM}


def test_the_unsubscribe_link_quoted_in_the_body_is_acted_on(project: Path) -> None:
    token = load_signer(current_workspace().state).make(LIST, VICTIM)
    body = f"Bitte abmelden.\r\n\r\n> Abmelden: https://news.example.org/u/{token}\r\n"
    _import(project, _reply(body=body, subject="Re: Solidaritaet"), maildir=True)
    assert _suppressed() == {VICTIM}


def test_a_forged_token_is_not_acted_on(project: Path) -> None:
    other = tokens.TokenSigner(b"x" * 32).make(LIST, VICTIM)
    output = _import(project, _reply(subject=f"unsubscribe {other}"))
    assert _suppressed() == set()
    assert "not verified (" in output


def test_trust_from_acts_on_the_from_header(project: Path) -> None:
    output = _import(project, _reply(), "--trust-from")
    assert _suppressed() == {VICTIM}
    assert "not verified (" not in output
    assert "0 not verified" in output.replace("\n", " ")


def test_a_plain_reply_to_the_mailto_link_of_a_sent_message_is_acted_on(project: Path) -> None:
    sent = CliRunner().invoke(cli, ["send", "campaigns/kasachstan.yaml", "--yes"])
    assert sent.exit_code == 0, sent.output
    first = sorted((project / "outbox/kasachstan/new").iterdir())[0]
    message = email.message_from_bytes(first.read_bytes(), policy=email.policy.default)
    mailto = re.search(r"<mailto:([^>]+)>", str(message["List-Unsubscribe"]))
    assert mailto is not None
    subject = parse_qs(urlsplit("mailto:" + mailto.group(1).removeprefix("mailto:")).query)
    reader = message["To"].addresses[0].addr_spec
    output = _import(project, _reply(subject=subject["subject"][0], sender=reader))
    assert ", 0 not verified" in output, output
    assert reader in _suppressed()


def test_the_token_names_the_list_not_the_campaign(project: Path) -> None:
    other = "other.list.example.org"
    token = load_signer(current_workspace().state).make(other, VICTIM)
    _import(project, _reply(subject=f"Re: unsubscribe {token}"), "--list", LIST)
    journal = Journal(current_workspace().state)
    try:
        assert journal.suppressed_on(VICTIM) == [other]
    finally:
        journal.close()

"""`kzmail inbox` through the real CLI: a campaign sent to a real SMTP server, its bounces,
complaints and replies in a Maildir or an mbox, matched by the returned Message-ID."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from typer.testing import CliRunner

from kzmail.cli.main import cli
from kzmail.models import ANY_LIST
from kzmail.state.journal import Journal
from tests.helpers.bounces import arf, dsn, exim, reply, write_maildir, write_mbox
from tests.helpers.campaigns import use_relay
from tests.helpers.smtp import SmtpServer

CAMPAIGN = "campaigns/kasachstan.yaml"
LIST = "kasachstan.newsletter.arbeiterinnenmacht.example.org"
runner = CliRunner()


def kz(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def sent_ids(project: Path, smtp_server: SmtpServer) -> dict[str, str]:
    """Send the campaign to the server; address -> Message-ID the journal kept."""
    use_relay(project / CAMPAIGN, smtp_server)
    code, _, err = kz("send", CAMPAIGN, "--yes")
    assert code == 0, err
    journal = Journal(project / ".kzmail")
    try:
        return {d.address: d.message_id for d in journal.deliveries("kasachstan", ("sent",))}
    finally:
        journal.close()


def mailbox_of(project: Path, ids: dict[str, str]) -> tuple[Path, list[str]]:
    a, b, c, d, e = sorted(ids)[:5]
    messages = [
        ("1.hard", dsn("mx.test", a, "5.1.1", "550 5.1.1 user unknown", returned_id=ids[a])),
        (
            "2.spam",
            dsn(
                "gmx.test",
                b,
                "5.7.1",
                "554 5.7.1 rejected as spam",
                returned_id=ids[b],
                own_id="<dsn.2@mx.test>",
            ),
        ),
        ("3.soft", exim(c, "452 4.2.2 mailbox full", returned_id=ids[c])),
        ("4.complaint", arf(d, returned_id=ids[d])),
        (
            "5.stranger",
            dsn(
                "mx.test",
                "stranger@else.test",
                "5.1.1",
                "550 user unknown",
                returned_id="<not-ours@else.test>",
                own_id="<dsn.5@mx.test>",
            ),
        ),
        ("6.human", reply(e, "Re: Newsletter", "Danke!", own_id="<h.6@x.test>")),
        (
            "7.broken",
            b"From: MAILER-DAEMON@x.test\r\nSubject: Undelivered Mail\r\n"
            b'Content-Type: multipart/report; boundary="x"\r\n\r\nFinal-Recipient: rfc822; '
            + e.encode()
            + b"\r\n",
        ),
    ]
    return write_maildir(project / "replies", messages), [a, b, c, d, e]


def test_inbox_suppresses_hard_bounces_and_complaints_only(
    project: Path, smtp_server: SmtpServer
) -> None:
    ids = sent_ids(project, smtp_server)
    box, (hard, spam, soft, complaint, human) = mailbox_of(project, ids)

    code, out, err = kz("inbox", str(box), "--campaign", CAMPAIGN, "--json")

    assert code == 0, err
    found = json.loads(out)
    assert set(found) == {"messages", "totals"}
    by_id = {m["id"]: m for m in found["messages"]}
    assert list(by_id) == [
        "1.hard",
        "2.spam",
        "3.soft",
        "4.complaint",
        "5.stranger",
        "6.human",
        "7.broken",
    ]
    assert by_id["1.hard"] == {
        "id": "1.hard",
        "kind": "bounce",
        "recipients": [
            {
                "address": hard,
                "suppress": True,
                "status": "5.1.1",
                "reason": "user unknown",
                "campaign": "kasachstan",
            }
        ],
    }
    assert by_id["2.spam"]["recipients"][0]["suppress"] is False
    assert by_id["3.soft"]["recipients"][0]["suppress"] is False
    assert by_id["4.complaint"]["kind"] == "complaint"
    assert by_id["4.complaint"]["recipients"][0]["suppress"] is True
    assert by_id["5.stranger"]["recipients"][0] == {
        "address": "stranger@else.test",
        "suppress": False,
        "status": "5.1.1",
        "reason": "user unknown",
        "campaign": None,
    }
    assert by_id["6.human"]["kind"] == "other"
    assert by_id["7.broken"] == {"id": "7.broken", "kind": "malformed", "recipients": []}
    assert found["totals"]["suppressed"] == 2
    assert found["totals"]["policy_blocked"] == 1
    assert found["totals"]["malformed"] == 1
    broken = [line for line in err.splitlines() if "7.broken" in line]
    assert len(broken) == 1 and "broken MIME" in broken[0]
    assert "WARNING" in err and "gmx.test" not in err  # warned per recipient domain

    journal = Journal(project / ".kzmail")
    try:
        assert journal.suppressed_on(hard) == [ANY_LIST]
        assert journal.suppressed_on(complaint) == [LIST]
        for kept in (spam, soft, human, "stranger@else.test"):
            assert journal.suppressed_on(kept) == []
        assert journal.status("kasachstan", hard) == "bounced"
        assert journal.status("kasachstan", spam) == "bounced"
        assert journal.status("kasachstan", human) == "sent"
    finally:
        journal.close()
    status = json.loads(kz("status", CAMPAIGN, "--json")[1])
    assert status["bounced"] == 3
    code, _, err = kz("report", CAMPAIGN, "--out", "r.csv")
    assert code == 0, err
    rows = list(csv.DictReader((project / "r.csv").open(encoding="utf-8")))
    assert {r["email"] for r in rows if r["status"] == "bounced"} == {hard, spam, soft}

    # a second run counts nothing twice
    code, out, _ = kz("inbox", str(box), "--campaign", CAMPAIGN, "--json")
    again = json.loads(out)["totals"]
    assert again["suppressed"] == 0 and again["soft_counted"] == 0
    # the stranger's bounce is remembered as unmatched (said in the totals, not acted on);
    # only the broken one is shown again
    assert again["repeated"] == 6 and again["unmatched_before"] == 1
    assert again["unmatched"] == 0 and again["malformed"] == 1


def test_dry_run_shows_the_verdict_and_changes_nothing(
    project: Path, smtp_server: SmtpServer
) -> None:
    ids = sent_ids(project, smtp_server)
    box, (hard, *_rest) = mailbox_of(project, ids)
    before = (project / ".kzmail" / "state.db").read_bytes()

    code, out, err = kz("inbox", str(box), "--dry-run", "--any-address", "--json")

    assert code == 0, err
    by_id = {m["id"]: m for m in json.loads(out)["messages"]}
    assert by_id["1.hard"]["recipients"][0]["suppress"] is True
    assert by_id["5.stranger"]["recipients"][0]["suppress"] is True  # --any-address verdict
    journal = Journal(project / ".kzmail")
    try:
        assert journal.suppressed_on(hard) == []
        assert journal.suppressed_on("stranger@else.test") == []
        assert journal.status("kasachstan", hard) == "sent"
        assert not journal.handled("mid:<dsn.1@mx.test>")
    finally:
        journal.close()
    del before


def test_soft_bounces_suppress_after_three_campaigns(project: Path, tmp_path: Path) -> None:
    box = project / "soft.mbox"
    messages = [
        dsn(
            "mx.test",
            "voll@example.org",
            "4.2.2",
            "452 4.2.2 mailbox full",
            returned_id=f"<r{n}@x>",
            own_id=f"<soft.{n}@mx.test>",
        )
        for n in range(3)
    ]
    write_mbox(box, messages)
    code, out, err = kz("inbox", str(box), "--any-address", "--json")
    assert code == 0, err
    verdicts = [m["recipients"][0]["suppress"] for m in json.loads(out)["messages"]]
    # unmatched bounces count under one name: three soft bounces, one "campaign"
    assert verdicts == [False, False, False]
    journal = Journal(project / ".kzmail")
    try:
        for run in ("a", "b"):
            journal.count_soft("voll@example.org", run, "4.2.2", "mailbox full")
    finally:
        journal.close()
    write_mbox(
        box,
        [
            dsn(
                "mx.test",
                "voll@example.org",
                "4.2.2",
                "452 4.2.2 mailbox full",
                returned_id="<r9@x>",
                own_id="<soft.9@mx.test>",
            )
        ],
    )
    code, out, err = kz("inbox", str(box), "--any-address", "--json")
    assert json.loads(out)["messages"][0]["recipients"][0]["suppress"] is True
    assert json.loads(out)["messages"][0]["id"] == "1"


def test_verp_matches_a_bounce_that_returns_no_headers(
    project: Path, smtp_server: SmtpServer
) -> None:
    campaign = project / CAMPAIGN
    campaign.write_text(
        campaign.read_text(encoding="utf-8")
        + "\nbounce_address: bounces+{token}@arbeiterinnenmacht.example.org\n",
        encoding="utf-8",
    )
    ids = sent_ids(project, smtp_server)
    senders = {m.rcpt_tos[0]: m.mail_from for m in smtp_server.handler.messages}
    gone = sorted(ids)[0]
    assert len(set(senders.values())) == len(senders)  # one envelope sender per delivery
    for address, sender in senders.items():
        assert sender.startswith("bounces+") and sender.endswith("@arbeiterinnenmacht.example.org")
        assert address.split("@")[0].lower() not in sender.lower()  # no address in clear
    # a bare qmail-style bounce: no copy of the message, only the VERP envelope address
    bare = (
        f"Return-Path: <>\r\nDelivered-To: {senders[gone]}\r\n"
        "From: MAILER-DAEMON@qmail.test\r\nTo: " + senders[gone] + "\r\n"
        "Subject: failure notice\r\nMessage-ID: <bare.1@qmail.test>\r\n\r\n"
        "Hi. This is the qmail-send program at qmail.test.\r\n"
        "I'm afraid I wasn't able to deliver your message to the following addresses.\r\n"
        "This is a permanent error; I've given up. Sorry it didn't work out.\r\n\r\n"
        f"<{gone}>:\r\nSorry, no mailbox here by that name. (#5.1.1)\r\n"
    ).encode()
    forged = bare.replace(senders[gone].split("@")[0][-4:].encode(), b"0000").replace(
        b"<bare.1@", b"<bare.2@"
    )
    box = write_maildir(project / "verp", [("1.bare", bare), ("2.forged", forged)])

    code, out, err = kz("inbox", str(box), "--json")

    assert code == 0, err
    rows = [m["recipients"][0] for m in json.loads(out)["messages"]]
    assert rows[0] == {
        "address": gone,
        "suppress": True,
        "status": "5.1.1",
        "reason": "no mailbox here",
        "campaign": "kasachstan",
    }
    assert rows[1]["campaign"] is None and rows[1]["suppress"] is False  # bad signature


def test_a_complaint_finds_its_list_in_the_journal_without_the_campaign_file(
    project: Path, smtp_server: SmtpServer
) -> None:
    ids = sent_ids(project, smtp_server)
    reader = sorted(ids)[0]
    (project / CAMPAIGN).rename(project / "kasachstan-archived.yaml")  # no longer in campaigns/
    box = write_maildir(project / "fbl", [("1.arf", arf(reader, returned_id=ids[reader]))])

    code, out, err = kz("inbox", str(box), "--json")

    assert code == 0, err
    (row,) = json.loads(out)["messages"][0]["recipients"]
    assert row["suppress"] is True and row["campaign"] == "kasachstan", (row, err)
    journal = Journal(project / ".kzmail")
    try:
        assert journal.suppressed_on(reader) == [LIST]  # the list it was sent to, not '*'
    finally:
        journal.close()


def test_an_unmatched_bounce_is_remembered_and_acted_on_only_by_any_address_saying_so(
    project: Path,
) -> None:
    stranger = "fremd@else.test"
    box = write_maildir(
        project / "b",
        [("1.x", dsn("mx.test", stranger, "5.1.1", "550 5.1.1 user unknown", returned_id="<n@x>"))],
    )
    code, out, err = kz("inbox", str(box))
    assert code == 0, err
    assert "matches no kzmail delivery" in err and "0 suppressed" in out
    # a second run neither acts nor reports it again, but says it is there
    code, out, err = kz("inbox", str(box))
    assert code == 0, err
    assert "matches no kzmail delivery" not in err
    assert "1 handled before (1 of them bounces matching no delivery: --any-address" in out
    journal = Journal(project / ".kzmail")
    try:
        assert journal.handled_as("mid:<dsn.1@mx.test>") == "unmatched"
        assert journal.suppressed_on(stranger) == []
    finally:
        journal.close()
    # --any-address acts on it, and says that an earlier run left it alone
    code, out, err = kz("inbox", str(box), "--any-address")
    assert code == 0, err
    assert "an earlier run left this bounce unmatched; acting on it now" in err
    assert f"suppressed {stranger}" in out
    code, out, err = kz("inbox", str(box), "--any-address")
    assert "1 handled before," in out and "0 suppressed" in out  # and only once
    journal = Journal(project / ".kzmail")
    try:
        assert journal.suppressed_on(stranger) == [ANY_LIST]
    finally:
        journal.close()


def test_unsubscribes_import_is_inbox_and_no_longer_skips_bounces(
    project: Path, smtp_server: SmtpServer
) -> None:
    ids = sent_ids(project, smtp_server)
    gone = sorted(ids)[0]
    bounce = dsn("mx.test", gone, "5.1.1", "550 5.1.1 user unknown", returned_id=ids[gone])
    box = write_maildir(project / "abmelden", [("1.dsn", bounce)])

    code, out, err = kz("unsubscribes", "import", str(box))

    assert code == 0, err
    assert f"bounce 1.dsn: suppressed {gone}" in out
    journal = Journal(project / ".kzmail")
    try:
        assert journal.suppressed_on(gone) == [ANY_LIST]
        assert journal.status("kasachstan", gone) == "bounced"
    finally:
        journal.close()


def test_an_unsubscribe_reply_leaves_the_list_its_token_names(project: Path) -> None:
    from kzmail.state.secret import load_signer

    other = "other.list.example.org"
    reader = "leserin@example.org"
    token = load_signer(project / ".kzmail").make(other, reader)
    box = write_maildir(
        project / "r",
        [("1.r", reply(reader, f"Re: unsubscribe {token}", "Bitte abmelden.", own_id="<u@x>"))],
    )

    code, out, err = kz("inbox", str(box), "--campaign", CAMPAIGN, "--json")

    assert code == 0, err
    (row,) = json.loads(out)["messages"][0]["recipients"]
    assert row["suppress"] is True and row["campaign"] is None
    journal = Journal(project / ".kzmail")
    try:
        assert journal.suppressed_on(reader) == [other]  # not the --campaign's list
    finally:
        journal.close()

"""A relay that is down, unknown, untrusted or refuses our password, through the real CLI
(issue 16, items 6-8): the send pauses at once with one line that says what to check, a
resumed send finishes the job (temporary failures included) and names who is still left,
and `check --smtp` finds a wrong password before anyone is mailed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kzmail.cli.main import cli
from kzmail.state.journal import Journal
from tests.helpers.campaigns import edit_campaign
from tests.helpers.servers import FaultHandler, fault_server
from tests.helpers.tls import auth_relay, refused_port, self_signed

CAMPAIGN = "campaigns/kasachstan.yaml"
runner = CliRunner()


def kz(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def point_at(project: Path, host: str, port: int, *, tls: str = "none", extra: str = "") -> None:
    """The campaign's relay is `host:port` (whatever it was before), at full speed."""
    edit_campaign(
        project / CAMPAIGN,
        lambda text: (
            re.sub(r"(?m)^  host: \S+", f"  host: {host}", text)
            .replace("port: 587", f"port: {port}")
            .replace("tls: starttls", f"tls: {tls}")
            .replace("per_second: 10", "per_second: 0")
            + extra
        ),
    )


def new_port(project: Path, port: int) -> None:
    edit_campaign(project / CAMPAIGN, lambda t: re.sub(r"(?m)^  port: \d+", f"  port: {port}", t))


def emails(project: Path) -> list[str]:
    lines = (project / "subscribers.example.csv").read_text(encoding="utf-8").splitlines()
    return [line.split(",")[0] for line in lines[1:]]


def tried(project: Path) -> list[int]:
    """The number of attempts of every delivery the journal holds."""
    journal = Journal(project / ".kzmail")
    try:
        statuses = ("pending", "failed", "sent", "uncertain")
        return [d.attempts for d in journal.deliveries("kasachstan", statuses)]
    finally:
        journal.close()


def pending(project: Path) -> int:
    return int(json.loads(kz("status", CAMPAIGN, "--json")[1])["pending"])


# item 8: a relay that cannot be reached pauses at once -------------------------------------
def paused_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("paused: ")]
    assert len(lines) == 1, err
    return lines[0]


def test_a_refused_connection_pauses_at_once_with_one_line(project: Path) -> None:
    port = refused_port()
    point_at(project, "127.0.0.1", port)  # the default retry policy: 4 attempts, backoff 2 s
    code, out, err = kz("send", CAMPAIGN, "--yes")
    assert code == 4, err
    assert paused_line(err) == (
        f"paused: cannot connect to 127.0.0.1:{port}: connection refused (is the relay "
        "running, and are smtp.host and smtp.port right?)"
    )
    assert "failed attempts in a row" not in err and "Traceback" not in err + out
    assert all(n == 1 for n in tried(project)), "each lane tried once, then the send paused"
    assert pending(project) == 12


def test_an_unknown_host_pauses_at_once(project: Path) -> None:
    point_at(project, "relay.invalid", 587)  # RFC 2606: .invalid never resolves
    code, _, err = kz("send", CAMPAIGN, "--yes")
    assert code == 4, err
    line = paused_line(err)
    assert line.startswith("paused: cannot connect to relay.invalid:587: unknown host"), line
    assert line.endswith("check smtp.host"), line
    assert all(n == 1 for n in tried(project))
    assert pending(project) == 12


@pytest.mark.parametrize("tls", ["starttls", "ssl"])
def test_a_certificate_we_cannot_verify_pauses_with_the_ca_file_hint(
    project: Path, tmp_path: Path, tls: str
) -> None:
    cert, key = self_signed(tmp_path)
    with auth_relay(cert, key, password="s3cret", implicit=tls == "ssl") as relay:
        point_at(project, "localhost", relay.port, tls=tls)
        code, _out, err = kz("send", CAMPAIGN, "--yes")
        assert code == 4, err
        line = paused_line(err)
        assert line.startswith(
            f"paused: kzmail cannot verify the TLS certificate of localhost:{relay.port} "
            "(certificate verify failed: self-signed certificate); if the relay has a "
            "certificate of its own, set smtp.ca_file to the CA certificate"
        ), line
        assert "refuses to take mail" not in err  # our own check failed, not the relay
        assert all(n == 1 for n in tried(project))
        assert relay.handler.messages == []


def test_a_greeting_421_is_still_retried_not_paused(project: Path) -> None:
    handler = FaultHandler(refuse_connections=2)  # busy for a moment: 421 on connect
    with fault_server(handler) as server:
        point_at(project, server.host, server.port, extra="\nretry:\n  backoff: 0.01\n")
        code, _out, err = kz("send", CAMPAIGN, "--yes")
    assert code == 0, err
    assert len(handler.arrivals) == 12


# item 6: a resumed send finishes the job ---------------------------------------------------
def test_a_resumed_send_retries_the_temporary_failures_and_exits_0_when_all_have_it(
    project: Path,
) -> None:
    everyone = emails(project)
    handler = FaultHandler()
    for address in everyone[:2]:
        handler.rcpt_faults[address] = ["451 4.7.1 greylisted, come back later"] * 2
    with fault_server(handler) as server:
        point_at(
            project, server.host, server.port, extra="\nretry:\n  attempts: 2\n  backoff: 0.01\n"
        )
        code, out, err = kz("send", CAMPAIGN, "--yes", "--limit", "6")
        assert code == 3, err
        for address in everyone[:2]:
            assert f"failed {address}: 451 4.7.1 greylisted, come back later (temporary" in err
    # the relay is down now: the send pauses at once and names who is left
    code, out, err = kz("send", CAMPAIGN, "--yes")
    assert code == 4, err
    assert "connection refused" in paused_line(err)
    # the two failed ones are named, or counted as not sent once this send took them up
    left = re.search(r"Not delivered yet: (?:(\d) failed, )?(\d+) not sent yet;", out)
    assert left is not None, out
    assert int(left.group(1) or 0) + int(left.group(2)) == 8, out
    # the relay is back: the resumed send mails the rest and the two temporary failures
    again = FaultHandler()
    with fault_server(again) as server:
        new_port(project, server.port)
        code, out, err = kz("send", CAMPAIGN, "--yes")
    assert code == 0, err
    assert "Sent 8, failed 0" in out
    assert "Every sendable subscriber has the message." in out
    for address in everyone:
        assert handler.received(address) + again.received(address) == 1, address
    counts = json.loads(kz("status", CAMPAIGN, "--json")[1])
    assert (counts["sent"], counts["failed"], counts["pending"]) == (12, 0, 0)


def test_a_permanent_failure_stays_failed_and_is_named_until_it_is_resolved(
    project: Path,
) -> None:
    everyone = emails(project)
    handler = FaultHandler()
    handler.data_faults[everyone[3]] = ["552 5.3.4 message too big"]
    handler.rcpt_faults[everyone[4]] = ["451 4.3.0 try later"] * 2
    with fault_server(handler) as server:
        point_at(
            project, server.host, server.port, extra="\nretry:\n  attempts: 2\n  backoff: 0.01\n"
        )
        code, out, err = kz("send", CAMPAIGN, "--yes")
        assert code == 3, err
        code, out, err = kz("send", CAMPAIGN, "--yes")  # the 451 is gone by now
    assert code == 3, err  # not everyone has it: the permanent failure is left
    assert "Sent 1, failed 0" in out
    assert f"failed {everyone[3]}: 552 5.3.4 message too big (permanent: not retried)" in err
    assert "Not delivered yet: 1 failed" in out
    assert "Every sendable subscriber" not in out
    assert handler.received(everyone[3]) == 0  # tried once, in the first send only
    assert handler.received(everyone[4]) == 1
    assert len(handler.arrivals) == 11


# item 7: check --smtp ----------------------------------------------------------------------
def auth_campaign(project: Path, port: int, tls: str, cert: Path | None) -> None:
    ca = f"\n  ca_file: {cert}" if cert else ""
    point_at(project, "127.0.0.1", port, tls=tls)
    edit_campaign(project / CAMPAIGN, lambda t: t.replace('username: ""', f'username: "news"{ca}'))


@pytest.mark.parametrize("tls", ["starttls", "ssl"])
def test_check_smtp_logs_in_and_sends_nothing(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tls: str
) -> None:
    cert, key = self_signed(tmp_path)
    logins: list[tuple[str, str]] = []
    with auth_relay(cert, key, password="s3cret", implicit=tls == "ssl", logins=logins) as relay:
        auth_campaign(project, relay.port, tls, cert)
        monkeypatch.setenv("KZMAIL_SMTP_PASSWORD", "s3cret")
        code, out, err = kz("check", CAMPAIGN, "--smtp")
        assert code == 0, err
        shown = "STARTTLS" if tls == "starttls" else "implicit TLS"
        assert (
            f"relay 127.0.0.1:{relay.port}: OK: EHLO, {shown}, AUTH as news accepted; no mail sent"
        ) in out
        assert logins == [("news", "s3cret")]
        assert relay.handler.messages == []
        # without --smtp, check does not connect
        assert kz("check", CAMPAIGN)[0] == 0
        assert len(logins) == 1


def test_check_smtp_with_a_wrong_password_exits_non_zero_naming_the_535(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = self_signed(tmp_path)
    with auth_relay(cert, key, password="s3cret") as relay:
        auth_campaign(project, relay.port, "starttls", cert)
        monkeypatch.setenv("KZMAIL_SMTP_PASSWORD", "wrong")
        code, out, err = kz("check", CAMPAIGN, "--smtp")
        assert code == 4, err
        relay_lines = [line for line in (out + err).splitlines() if "relay 127.0.0.1" in line]
        assert relay_lines == [
            f"error: relay 127.0.0.1:{relay.port}: AUTH as news refused: 535 5.7.8 "
            "Authentication credentials invalid"
        ]
        assert "OK: can be sent" not in out
        code, out, _ = kz("check", CAMPAIGN, "--smtp", "--json")
        assert code == 4
        (answer,) = json.loads(out)["relays"]
        assert (answer["ok"], answer["code"]) == (False, 535)
        assert relay.handler.messages == []


def test_check_smtp_says_what_is_wrong_with_a_relay_it_cannot_reach(
    project: Path, tmp_path: Path
) -> None:
    cert, key = self_signed(tmp_path)
    with auth_relay(cert, key, password="s3cret") as relay:
        point_at(project, "localhost", relay.port, tls="starttls")  # no ca_file
        code, _out, err = kz("check", CAMPAIGN, "--smtp")
    assert code == 4, err
    assert f"error: relay localhost:{relay.port}: kzmail cannot verify the TLS certificate" in err
    assert "set smtp.ca_file" in err
    port = refused_port()
    new_port(project, port)
    code, _out, err = kz("check", CAMPAIGN, "--smtp")
    assert code == 4
    assert f"error: relay localhost:{port}: cannot connect to localhost:{port}: " in err

"""`kzmail send`, `status`, `report` and `retry` through the real CLI, against real servers."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from typer.testing import CliRunner

from kzmail.cli.main import cli
from tests.helpers.campaigns import edit_campaign, use_relay
from tests.helpers.servers import FaultHandler, FaultServer, fault_server
from tests.helpers.smtp import SmtpServer

CAMPAIGN = "campaigns/kasachstan.yaml"
runner = CliRunner()


def kz(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def relay(project: Path, server: FaultServer | SmtpServer, extra: str = "") -> None:
    campaign = project / CAMPAIGN
    edit_campaign(
        campaign,
        lambda text: (
            text.replace("host: local", f"host: {server.host}")
            .replace("port: 587", f"port: {server.port}")
            .replace("tls: starttls", "tls: none")
            .replace("per_second: 10", "per_second: 0")
            + extra
        ),
    )


def emails(project: Path) -> list[str]:
    lines = (project / "subscribers.example.csv").read_text(encoding="utf-8").splitlines()
    return [line.split(",")[0] for line in lines[1:]]


def test_status_json_counts_every_state(project: Path, smtp_server: SmtpServer) -> None:
    use_relay(project / CAMPAIGN, smtp_server)
    everyone = emails(project)
    smtp_server.handler.refuse_rcpt[everyone[2]] = "550 5.7.1 not wanted here"
    code, _, _ = kz("status", CAMPAIGN, "--json")
    assert code == 0
    assert json.loads(runner.invoke(cli, ["status", CAMPAIGN, "--json"]).stdout)["pending"] == 12
    code, out, err = kz("send", CAMPAIGN, "--yes", "--limit", "5")
    assert code == 3, err
    assert f"failed {everyone[2]}: 550 5.7.1 not wanted here" in err
    counts = json.loads(kz("status", CAMPAIGN, "--json")[1])
    assert {k: counts[k] for k in ("total", "sent", "failed", "uncertain", "pending")} == {
        "total": 12,
        "sent": 4,
        "failed": 1,
        "uncertain": 0,
        "pending": 7,
    }
    assert all(isinstance(value, int) for value in counts.values())
    code, out, _ = kz("status", CAMPAIGN)
    assert code == 0
    assert "sent" in out
    assert "12 subscribers" in out


def test_report_names_who_failed_and_why(
    project: Path, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    use_relay(project / CAMPAIGN, smtp_server)
    bad = emails(project)[5]
    smtp_server.handler.refuse_rcpt[bad] = "550 5.1.1 no such user"
    kz("send", CAMPAIGN, "--yes")
    out_file = tmp_path / "failures.csv"
    code, out, _ = kz("report", CAMPAIGN, "--out", str(out_file))
    assert code == 0
    assert "1 rows" in out
    rows = list(csv.DictReader(out_file.open(encoding="utf-8")))
    assert [(r["email"], r["status"], r["code"], r["retryable"]) for r in rows] == [
        (bad, "failed", "550", "no")
    ]
    assert "no such user" in rows[0]["reason"]
    # and the address is now suppressed: the next send does not even try it
    code, out, _ = kz("send", CAMPAIGN, "--yes")
    assert "1 suppressed" in out


def test_retry_re_attempts_only_the_temporary_failures(project: Path) -> None:
    everyone = emails(project)
    handler = FaultHandler()
    handler.rcpt_faults[everyone[0]] = ["451 4.7.1 later"] * 2
    handler.data_faults[everyone[1]] = ["552 5.3.4 too big"]
    with fault_server(handler) as server:
        relay(project, server, "\nretry:\n  attempts: 2\n  backoff: 0.01\n")
        code, out, err = kz("send", CAMPAIGN, "--yes")
        assert code == 3
        assert f"kzmail retry {CAMPAIGN}" in out
        code, out, err = kz("retry", CAMPAIGN, "--yes")
        # exit 3: the permanent failure is still without the message, and named
        assert code == 3, err
        assert "Sent 1, failed 0" in out
        assert f"failed {everyone[1]}: 552 5.3.4 too big (permanent: not retried)" in err
    assert handler.received(everyone[0]) == 1
    assert handler.received(everyone[1]) == 0
    assert len(handler.arrivals) == 11


def test_a_relay_that_refuses_pauses_with_a_reason_and_no_traceback(project: Path) -> None:
    handler = FaultHandler(refuse_connections=1000, greeting_fault="554 5.7.0 you are blocked")
    with fault_server(handler) as server:
        relay(project, server)
        code, out, err = kz("send", CAMPAIGN, "--yes")
    assert code == 4
    assert "paused: the relay refuses to take mail: 554 5.7.0 you are blocked" in err
    assert f"resume with: kzmail send {CAMPAIGN}" in err
    assert "Traceback" not in err + out
    counts = json.loads(kz("status", CAMPAIGN, "--json")[1])
    assert counts["pending"] == 12
    assert counts["failed"] == 0


def test_a_missing_password_is_one_line_before_anything_is_sent(
    project: Path, smtp_server: SmtpServer
) -> None:
    use_relay(project / CAMPAIGN, smtp_server)
    edit_campaign(project / CAMPAIGN, lambda t: t.replace('username: ""', 'username: "news"'))
    code, _, err = kz("send", CAMPAIGN, "--yes")
    assert code == 2
    assert "smtp.password_env: environment variable KZMAIL_SMTP_PASSWORD is not set" in err
    assert len(err.strip().splitlines()) == 1
    assert smtp_server.handler.messages == []


def test_the_embedded_sink_is_a_rehearsal_one_file_per_subscriber(project: Path) -> None:
    for _ in range(2):
        code, out, err = kz("send", CAMPAIGN)
        assert code == 0, err
        assert "Sent 12" in out
    assert len(list((project / "outbox" / "kasachstan" / "new").iterdir())) == 12
    counts = json.loads(kz("status", CAMPAIGN, "--json")[1])
    assert (counts["total"], counts["sent"]) == (12, 12)


def test_report_writes_formula_looking_cells_as_text(
    project: Path, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    (project / "subscribers.example.csv").write_text(
        'email,name\r\n=1+2@example.org,"=HYPERLINK(""http://x"")"\r\n', encoding="utf-8"
    )
    use_relay(project / CAMPAIGN, smtp_server)
    smtp_server.handler.refuse_rcpt["=1+2@example.org"] = "550 5.1.1 no such user"
    kz("send", CAMPAIGN, "--yes")
    out_file = tmp_path / "failures.csv"
    code, _, err = kz("report", CAMPAIGN, "--out", str(out_file))
    assert code == 0, err
    rows = list(csv.DictReader(out_file.open(encoding="utf-8", newline="")))
    assert [(r["email"], r["name"]) for r in rows] == [
        ("=1+2@example.org", '\'=HYPERLINK("http://x")')
    ]

"""The `kzmail` command as a user meets it: output, files, exit codes, one-line errors."""

from __future__ import annotations

import email
import email.policy
import email.utils
import mailbox
import re
import time
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kzmail.cli.main import cli
from tests.helpers.campaigns import edit_campaign, use_relay
from tests.helpers.smtp import SmtpServer

CAMPAIGN = "campaigns/kasachstan.yaml"


def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), input=stdin)
    return result.exit_code, result.stdout, result.stderr


def test_preview_writes_the_three_files_for_the_first_subscriber(project: Path) -> None:
    code, out, _ = run("preview")
    assert code == 0
    for suffix in (".html", ".txt", ".eml"):
        assert f"preview/kasachstan{suffix}" in out
        assert (project / f"preview/kasachstan{suffix}").stat().st_size > 1000
    eml = email.message_from_bytes(
        (project / "preview/kasachstan.eml").read_bytes(), policy=email.policy.strict
    )
    assert eml["To"].addresses[0].addr_spec == "juergen.mueller@example.org"
    assert "Hallo Jürgen Müller," in (project / "preview/kasachstan.txt").read_text()


def test_the_date_header_is_utc_as_plus_0000(project: Path) -> None:
    """RFC 5322 3.3: the zone is `+0000`; `GMT` is obsolete syntax (4.3), which strict
    parsers and some spam filters hold against a message."""
    before = int(time.time())
    code, _, stderr = run("preview")
    after = time.time()
    assert code == 0, stderr
    data = (project / "preview/kasachstan.eml").read_bytes()
    dates = re.findall(rb"(?m)^Date: ([^\r\n]*)\r$", data)
    assert len(dates) == 1, dates
    assert re.fullmatch(
        rb"[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000", dates[0]
    )
    when = email.utils.parsedate_to_datetime(dates[0].decode())
    assert when.utcoffset() == timedelta(0)
    assert before <= when.timestamp() <= after


def test_preview_for_a_chosen_subscriber_into_a_chosen_folder(project: Path) -> None:
    code, _, _ = run(
        "preview", CAMPAIGN, "--subscriber", "ANNA.mueller@example.com", "--out", "elsewhere"
    )
    assert code == 0
    assert "Hallo Müller, Anna," in (project / "elsewhere/kasachstan.txt").read_text()


def test_send_to_the_embedded_sink_needs_no_confirmation(project: Path) -> None:
    code, out, _ = run("send", CAMPAIGN)
    assert code == 0
    assert "Sent 12, failed 0" in out
    assert len(mailbox.Maildir(project / "outbox/kasachstan", create=False)) == 12


def test_send_to_a_real_relay_asks_first(project: Path, smtp_server: SmtpServer) -> None:
    use_relay(project / CAMPAIGN, smtp_server)
    code, out, _ = run("send", CAMPAIGN, stdin="n\n")
    assert code != 0
    assert "Send now?" in out
    assert smtp_server.handler.messages == []
    code, out, _ = run("send", CAMPAIGN, "--yes")
    assert code == 0
    assert len(smtp_server.handler.messages) == 12


def test_dry_run_and_limit(project: Path, smtp_server: SmtpServer) -> None:
    use_relay(project / CAMPAIGN, smtp_server)
    code, out, _ = run("send", CAMPAIGN, "--dry-run")
    assert code == 0
    assert "built 12 messages, sent none" in out
    code, out, _ = run("send", CAMPAIGN, "--limit", "3", "--yes")
    assert code == 0
    assert len(smtp_server.handler.messages) == 3


def _assert_one_line_error(code: int, out: str, err: str, *needles: str) -> None:
    assert code != 0
    assert "Traceback" not in out + err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0]


def test_missing_key(project: Path) -> None:
    edit_campaign(project / CAMPAIGN, lambda t: t.replace("list_id:", "# list_id:"))
    _assert_one_line_error(
        *run("send", CAMPAIGN), "kasachstan.yaml", "list_id", "required key is missing"
    )


def test_wrong_path(project: Path) -> None:
    edit_campaign(project / CAMPAIGN, lambda t: t.replace("newsletter.mjml", "nope.mjml"))
    _assert_one_line_error(*run("preview", CAMPAIGN), "kasachstan.yaml:", "template", "nope.mjml")


def test_bad_yaml(project: Path) -> None:
    edit_campaign(project / CAMPAIGN, lambda t: t.replace("name: kasachstan", "name: [kasachstan"))
    _assert_one_line_error(*run("send", CAMPAIGN), "kasachstan.yaml:", "invalid YAML")


def test_unknown_template_field(project: Path, smtp_server: SmtpServer) -> None:
    use_relay(project / CAMPAIGN, smtp_server)
    template = project / "templates/newsletter.mjml"
    template.write_text(
        template.read_text().replace("{{ unsubscribe_url }}", "{{ subscriber.emial }}")
    )
    line = next(i for i, t in enumerate(template.read_text().splitlines(), 1) if "emial" in t)
    _assert_one_line_error(*run("send", CAMPAIGN, "--yes"), f"newsletter.mjml:{line}:", "emial")
    assert smtp_server.handler.messages == []  # nothing half-sent


def test_missing_campaign_file(project: Path) -> None:
    _assert_one_line_error(*run("send", "campaigns/nope.yaml"), "nope.yaml", "not found")


def test_unreadable_subscriber_list(project: Path) -> None:
    (project / "subscribers.example.csv").write_text("name,city\nA,B\n")
    _assert_one_line_error(*run("send", CAMPAIGN), "subscribers.example.csv", "email column")


def test_password_env_not_set(
    project: Path, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_relay(project / CAMPAIGN, smtp_server)
    edit_campaign(project / CAMPAIGN, lambda t: t.replace('username: ""', "username: news"))
    monkeypatch.delenv("KZMAIL_SMTP_PASSWORD", raising=False)
    _assert_one_line_error(
        *run("send", CAMPAIGN, "--yes"), "smtp.password_env", "KZMAIL_SMTP_PASSWORD"
    )


def test_unreachable_relay_pauses_with_the_reason_and_a_resume_hint(
    project: Path, smtp_server: SmtpServer
) -> None:
    use_relay(project / CAMPAIGN, smtp_server)
    edit_campaign(project / CAMPAIGN, lambda t: t.replace(f"port: {smtp_server.port}", "port: 1"))
    code, out, err = run("send", CAMPAIGN, "--yes")
    assert code == 4
    assert "Traceback" not in out + err
    assert "paused:" in err
    assert "paused: cannot connect to 127.0.0.1:1: connection refused" in err
    assert "resume with: kzmail send campaigns/kasachstan.yaml" in err


def test_invalid_test_address_is_one_line(project: Path) -> None:
    _assert_one_line_error(
        *run("send", CAMPAIGN, "--to", "not-an-address"), "--to", "not-an-address"
    )


def test_preview_into_an_unwritable_place_is_one_line(project: Path) -> None:
    (project / "taken").write_text("a file, not a folder")
    _assert_one_line_error(
        *run("preview", "--out", "taken"), "taken", "--out", "cannot write the preview"
    )

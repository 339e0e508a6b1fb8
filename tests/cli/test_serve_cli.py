"""`kzmail serve` and `kzmail secret rotate` through the real command line."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from kzmail.cli.common import current_workspace
from kzmail.cli.main import cli
from kzmail.services import unsubscribe
from kzmail.state.journal import Journal
from kzmail.state.secret import load_signer
from kzmail.tokens import unsubscribe_url

LIST = "kasachstan.newsletter.arbeiterinnenmacht.example.org"
KZMAIL = Path(sys.executable).with_name("kzmail")


def test_serve_runs_until_stopped_and_records_one_click(project: Path) -> None:
    token = load_signer(current_workspace().state).make(LIST, "jane@example.org")
    process = subprocess.Popen(
        [str(KZMAIL), "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+) for (\S+)", line)
        assert match, line
        assert match.group(2) == LIST
        with httpx.Client(base_url=match.group(1), timeout=10) as http:
            assert http.get("/healthz").text == "ok\n"
            response = http.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"})
            assert response.status_code == 200
            assert "server" not in response.headers
    finally:
        process.terminate()
        process.wait(10)
    journal = Journal(current_workspace().state)
    assert journal.is_suppressed(LIST, "jane@example.org")
    journal.close()


def test_serve_without_campaigns_is_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KZMAIL_STATE_DIR", str(tmp_path / ".kzmail"))
    (tmp_path / "campaigns").mkdir()
    result = CliRunner().invoke(cli, ["serve", "--port", "0"])
    assert result.exit_code == 2
    assert "no campaign file" in result.output
    assert "Traceback" not in result.output


def test_serve_on_a_taken_port_is_one_line_error(project: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["serve", "--port", str(port)])
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.output


def test_secret_rotate_keeps_old_links_for_the_grace_period(project: Path) -> None:
    old = load_signer(current_workspace().state).make(LIST, "jane@example.org")
    result = CliRunner().invoke(cli, ["secret", "rotate", "--grace-days", "30"])
    assert result.exit_code == 0, result.output
    assert "work until" in result.output
    signer = load_signer(current_workspace().state)
    assert signer.verify(old) == (LIST, "jane@example.org")
    assert signer.make(LIST, "jane@example.org") != old


def test_secret_rotate_zero_retires_every_older_secret(project: Path) -> None:
    """`--grace-days 0` means "stop old links at once": also those of earlier rotations."""
    first = load_signer(current_workspace().state).make(LIST, "jane@example.org")
    assert CliRunner().invoke(cli, ["secret", "rotate", "--grace-days", "90"]).exit_code == 0
    second = load_signer(current_workspace().state).make(LIST, "jane@example.org")
    result = CliRunner().invoke(cli, ["secret", "rotate", "--grace-days", "0"])
    assert result.exit_code == 0, result.output
    assert "no longer work" in result.output
    application, _ = unsubscribe.build_app(current_workspace(), [])
    with TestClient(application, base_url="https://news.example.org") as client:
        for token in (first, second):
            answer = client.post(unsubscribe_url("", token), data={"List-Unsubscribe": "One-Click"})
            assert answer.status_code >= 400, answer.text
    journal = Journal(current_workspace().state)
    try:
        assert journal.suppressions() == []
    finally:
        journal.close()
    fresh = load_signer(current_workspace().state).make(LIST, "jane@example.org")
    assert load_signer(current_workspace().state).verify(fresh) == (LIST, "jane@example.org")


def test_preview_serve_runs_on_localhost_and_preselects_the_subscriber(project: Path) -> None:
    process = subprocess.Popen(
        [
            str(KZMAIL),
            "preview",
            "--serve",
            "--no-open",
            "--port",
            "0",
            "--subscriber",
            "ayse.yilmaz@example.net",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+/\?to=\S+)", line)
        assert match, line
        page = httpx.get(match.group(1), timeout=10)
        assert page.status_code == 200
        assert '<option value="ayse.yilmaz@example.net" selected>' in page.text
        assert "Hallo Ayşe Yılmaz" in page.text
    finally:
        process.terminate()
        process.wait(10)


def test_preview_serve_with_a_broken_campaign_is_one_line_error(project: Path) -> None:
    campaign = project / "campaigns/kasachstan.yaml"
    campaign.write_text(
        campaign.read_text(encoding="utf-8").replace("tls: starttls", "tls: maybe"),
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["preview", "--serve", "--no-open", "--port", "0"])
    assert result.exit_code == 2
    assert "smtp.tls" in result.output
    assert "Traceback" not in result.output

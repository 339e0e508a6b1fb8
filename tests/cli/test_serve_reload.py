"""`kzmail serve` reads campaigns again when they change (issue 16, item 11): a broken draft
is reported and the others are served; a list added after it started is served too."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from kzmail.cli.common import current_workspace
from kzmail.state.secret import load_signer
from kzmail.tokens import unsubscribe_url
from tests.helpers.bundle import free_port
from tests.helpers.campaigns import edit_campaign

KZMAIL = Path(sys.executable).with_name("kzmail")
LIST = "kasachstan.newsletter.arbeiterinnenmacht.example.org"
NEW_LIST = "later.news.example.org"


def _until(check: object, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def test_serve_reloads_reports_a_broken_draft_and_serves_a_list_added_later(
    project: Path,
) -> None:
    signer = load_signer(current_workspace().state)
    old = unsubscribe_url("", signer.make(LIST, "jane@example.org"))
    new = unsubscribe_url("", signer.make(NEW_LIST, "jane@example.org"))
    port = free_port()
    log = project / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(KZMAIL), "serve", "--port", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=os.environ.copy(),
        )
    base = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            try:
                return httpx.get(base + "/healthz", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        _until(up, "serve did not start: " + log.read_text())
        assert httpx.get(base + new, timeout=5).status_code == 400  # not served yet
        draft = project / "campaigns/later.yaml"
        draft.write_text((project / "campaigns/kasachstan.yaml").read_text(encoding="utf-8"))
        edit_campaign(
            draft,
            lambda t: (
                t.replace("name: kasachstan", "name: later")
                .replace("tls: starttls", "tls: maybe")
                .replace(f"list_id: {LIST}", f"list_id: {NEW_LIST}")
            ),
        )

        def reported() -> bool:  # lists are looked at again when a request needs them
            httpx.get(base + old, timeout=5)
            return "smtp.tls" in log.read_text()

        _until(reported, "the broken draft was not reported")
        assert "later.yaml" in log.read_text()
        assert httpx.get(base + old, timeout=5).status_code == 200  # the others still served
        edit_campaign(draft, lambda t: t.replace("tls: maybe", "tls: starttls"))
        _until(
            lambda: httpx.get(base + new, timeout=5).status_code == 200,
            "the list added after start is not served: " + log.read_text(),
        )
        assert httpx.get(base + old, timeout=5).status_code == 200
    finally:
        process.terminate()
        process.wait(10)

"""Chromium clicks the unsubscribe page of a server that runs from a bundle alone."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser
from typer.testing import CliRunner

from kzmail.cli.common import current_workspace
from kzmail.cli.main import cli
from kzmail.state.secret import load_signer
from kzmail.tokens import unsubscribe_url
from tests.helpers.bundle import bundle_server, free_port, leaks
from tests.helpers.unsubscribe import suppressions

LIST = "kasachstan.newsletter.arbeiterinnenmacht.example.org"
ADDRESS = "ayse.yilmaz@example.net"


def test_chromium_unsubscribes_on_the_bundle_served_server(
    project: Path, tmp_path: Path, browser: Browser
) -> None:
    port = free_port()
    folder = tmp_path / "server"
    made = CliRunner().invoke(
        cli,
        ["server", "bundle", "campaigns/kasachstan.yaml", "--out", str(folder),
         "--sync-url", f"http://127.0.0.1:{port}"],
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    path = unsubscribe_url("", load_signer(current_workspace().state).make(LIST, ADDRESS))
    with bundle_server(folder, port, tmp_path / "vps") as server:
        context = browser.new_context(java_script_enabled=False)
        page = context.new_page()
        response = page.goto(server.url + path)
        assert response is not None and response.status == 200
        assert page.locator("html").get_attribute("lang") == "de"
        assert page.title() == "Vom Newsletter abmelden"
        assert "a…@example.net" in page.locator("main").inner_text()
        csp = response.headers["content-security-policy"]
        assert "default-src 'none'" in csp
        page.get_by_role("button", name="Jetzt abmelden").click()
        page.wait_for_load_state()
        assert page.locator("h1").inner_text() == "Abgemeldet"
        context.close()
        result = CliRunner().invoke(cli, ["sync"])
        assert result.exit_code == 0, result.output
    assert [(s[0], s[1], s[2]) for s in suppressions()] == [
        (LIST, ADDRESS, "unsubscribe: web page (server)")
    ]
    assert leaks([folder, server.log], [ADDRESS]) == []

"""Unsubscribe in a real browser, from a link in a message kzmail really sent."""

from __future__ import annotations

import re
import subprocess
import sys
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import Browser, Page

from kzmail.cli.common import current_workspace
from kzmail.services import unsubscribe
from kzmail.state.journal import Journal
from kzmail.state.secret import load_signer
from tests.helpers.campaigns import edit_campaign, use_relay
from tests.helpers.smtp import SmtpServer
from tests.helpers.web import running

ADDRESS = "ayse.yilmaz@example.net"
KZMAIL = Path(sys.executable).with_name("kzmail")


def _send(campaign: Path) -> str:
    # a real `kzmail send` process: Playwright's sync API owns this thread's event loop
    result = subprocess.run(
        [str(KZMAIL), "send", str(campaign), "--yes"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _unsubscribe_url(data: bytes) -> str:
    message = message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    header = str(message["List-Unsubscribe"])
    urls = re.findall(r"<(https://[^>]+)>", header)
    assert len(urls) == 1, header
    assert "mailto:" in header
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    html = message.get_body(("html",))
    assert html is not None
    assert f'href="{urls[0]}"' in html.get_content()
    return str(urls[0])


def test_unsubscribe_link_from_a_sent_message_works_in_chromium_without_javascript(
    project: Path, smtp_server: SmtpServer, browser: Browser
) -> None:
    campaign = project / "campaigns/kasachstan.yaml"
    use_relay(campaign, smtp_server)
    _send(campaign)
    sent_to = {r for m in smtp_server.handler.messages for r in m.rcpt_tos}
    assert ADDRESS in sent_to
    data = next(m.data for m in smtp_server.handler.messages if m.rcpt_tos == [ADDRESS])
    url = urlsplit(_unsubscribe_url(data))
    assert url.scheme == "https"
    assert url.path.startswith("/u/")

    application, _ = unsubscribe.build_app(current_workspace(), [])
    with running(application) as base:
        # the HTTPS proxy is not part of the test: keep the /u/<token> path, use our server
        context = browser.new_context(java_script_enabled=False)
        page = context.new_page()
        response = page.goto(base + url.path)
        assert response is not None
        assert response.status == 200
        assert page.locator("html").get_attribute("lang") == "de"
        assert "a…@example.net" in page.locator("main").inner_text()
        assert page.title() == "Vom Newsletter abmelden"
        page.get_by_role("button", name="Jetzt abmelden").click()
        page.wait_for_load_state()
        assert page.locator("h1").inner_text() == "Abgemeldet"
        assert "a…@example.net" in page.locator("main").inner_text()
        context.close()

    # the next newsletter to the same list: kzmail send must skip the address
    followup = project / "campaigns/followup.yaml"
    followup.write_text(campaign.read_text(encoding="utf-8"), encoding="utf-8")
    edit_campaign(followup, lambda t: t.replace("name: kasachstan", "name: followup"))
    smtp_server.handler.messages.clear()
    output = _send(followup)
    again = {r for m in smtp_server.handler.messages for r in m.rcpt_tos}
    assert ADDRESS not in again
    assert again == sent_to - {ADDRESS}
    assert "1 suppressed" in output


CONTRAST = """(sel) => {
  const rgb = (c) => c.match(/\\d+(\\.\\d+)?/g).slice(0, 3).map(Number);
  const lum = (c) => { const [r, g, b] = rgb(c).map((v) => { v /= 255;
    return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  let el = document.querySelector(sel);
  const fg = getComputedStyle(el).color;
  while (el && getComputedStyle(el).backgroundColor === "rgba(0, 0, 0, 0)") {
    el = el.parentElement; }
  const bg = el ? getComputedStyle(el).backgroundColor : "rgb(255, 255, 255)";
  const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
  return (a + 0.05) / (b + 0.05);
}"""


def contrast(page: Page, selector: str) -> float:
    """WCAG contrast ratio of an element's text against its (inherited) background."""
    return float(page.evaluate(CONTRAST, selector))


def test_unsubscribe_page_works_by_keyboard_alone(project: Path, browser: Browser) -> None:
    list_id = "kasachstan.newsletter.arbeiterinnenmacht.example.org"
    token = load_signer(current_workspace().state).make(list_id, "jane@example.org")
    application, _ = unsubscribe.build_app(current_workspace(), [])
    with running(application) as base:
        page = browser.new_page()
        page.goto(f"{base}/u/{token}")
        page.keyboard.press("Tab")
        focused = page.evaluate("document.activeElement.textContent")
        assert focused == "Jetzt abmelden"
        outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert outline != "none"  # a visible focus ring
        for selector in ("button", "p", "p.note", "h1"):
            ratio = contrast(page, selector)
            assert ratio >= 4.5, (selector, ratio)  # WCAG AA for normal text
        page.keyboard.press("Enter")
        page.wait_for_load_state()
        assert page.locator("h1").inner_text() == "Abgemeldet"
        page.close()
    journal = Journal(current_workspace().state)
    assert journal.is_suppressed(list_id, "jane@example.org")
    journal.close()

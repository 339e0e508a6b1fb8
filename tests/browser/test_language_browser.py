"""A campaign made with `kzmail new --language en` (no demands, no sources), previewed and
shown at 375 px in a real Chromium: no German fixed text, and no empty box or heading."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser
from typer.testing import CliRunner

from kzmail.cli.main import cli
from tests.helpers.campaigns import GERMAN_FIXED_TEXTS, new_campaign

# every MJML section is a div of the body's width; each list and heading within it
_EMPTY_PARTS = """() => {
  const shown = (e) => e.getBoundingClientRect().height > 0;
  const sections = [...document.querySelectorAll('body div[style*="max-width:600px"]')];
  return {
    sections: sections.length,
    empty_sections: sections.filter((s) => shown(s) && !s.innerText.trim()).length,
    empty_headings: [...document.querySelectorAll('h1,h2,h3')].filter(
      (h) => !h.innerText.trim()).length,
    empty_lists: [...document.querySelectorAll('ul,ol')].filter(
      (l) => !l.querySelector('li')).length,
    headings: [...document.querySelectorAll('h1,h2,h3')].map((h) => h.innerText.trim()),
    fits: document.documentElement.scrollWidth <= innerWidth,
    text: document.body.innerText,
  };
}"""


def test_an_english_campaign_at_375_px(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, browser: Browser
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KZMAIL_STATE_DIR", str(tmp_path / ".kzmail"))
    campaign = new_campaign(tmp_path, "meeting", "--language", "en")
    result = CliRunner().invoke(cli, ["preview", str(campaign)])
    assert result.exit_code == 0, result.output
    html = (tmp_path / "preview/meeting.html").read_text(encoding="utf-8")
    context = browser.new_context(viewport={"width": 375, "height": 800})
    try:
        page = context.new_page()
        page.set_content(html, wait_until="load")
        seen = page.evaluate(_EMPTY_PARTS)
    finally:
        context.close()
    assert seen["sections"] >= 4  # header, title, article, footer
    assert seen["empty_sections"] == 0, seen
    assert seen["empty_headings"] == 0 and seen["empty_lists"] == 0, seen
    assert seen["headings"] == ["Invitation to our next meeting", "A subheading"], seen
    assert seen["fits"]
    text = seen["text"]
    assert [german for german in GERMAN_FIXED_TEXTS if german in text] == []
    for english in ("By Our group", "Hello Alex,", "Unsubscribe from this newsletter"):
        assert english in text

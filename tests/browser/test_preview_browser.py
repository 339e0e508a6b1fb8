"""`kzmail preview --serve` in a real Chromium: both widths without horizontal scrolling,
the picker, the text part and live reload when campaign, article or template change."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Frame, Page
from playwright.sync_api import Error as PlaywrightError

from kzmail.cli.common import current_workspace
from kzmail.services.preview import LivePreview
from kzmail.web.preview import preview_app
from tests.helpers.campaigns import edit_campaign
from tests.helpers.web import running


@pytest.fixture
def preview_page(project: Path, browser: Browser) -> Iterator[tuple[Page, list[str]]]:
    source = LivePreview(current_workspace(), project / "campaigns/kasachstan.yaml")
    with running(preview_app(source)) as base:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(base + "/")
        page.wait_for_load_state("load")
        yield page, problems
        context.close()


def wait_until(page: Page, check: Callable[[], bool], timeout: float = 15.0) -> None:
    """Poll from Python: the page's CSP (rightly) forbids Playwright's eval-based waits."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except PlaywrightError:  # the page was reloading under us
            pass
        if time.monotonic() > deadline:
            raise AssertionError("condition not met within the timeout")
        page.wait_for_timeout(100)


def newsletter_frames(page: Page) -> list[Frame]:
    frames = [f for f in page.frames if "/frame?" in f.url]
    assert len(frames) == 2, [f.url for f in page.frames]
    return frames


def test_newsletter_fits_600_and_375_px_without_horizontal_scrolling(
    preview_page: tuple[Page, list[str]],
) -> None:
    page, problems = preview_page
    desktop, mobile = (page.locator("iframe").nth(i) for i in range(2))
    box_d, box_m = desktop.bounding_box(), mobile.bounding_box()
    assert box_d is not None
    assert box_m is not None
    assert box_d["y"] == box_m["y"]  # side by side
    assert box_d["x"] + box_d["width"] <= box_m["x"]
    widths = {}
    for frame in newsletter_frames(page):
        frame.wait_for_load_state("load")
        width, scroll, fits = frame.evaluate(
            "[innerWidth, document.documentElement.scrollWidth,"
            " document.documentElement.scrollWidth <= innerWidth]"
        )
        assert fits, (frame.url, width, scroll)
        widths[width] = frame.evaluate("document.body.innerText")
    assert set(widths) == {600, 375}
    for text in widths.values():
        assert "Unsere Forderungen" in text
        assert "Hallo Jürgen Müller" in text
    text_part = page.locator("pre").inner_text()
    assert "Unsere Forderungen" in text_part
    assert "/u/" in text_part  # the personal unsubscribe link
    assert problems == []  # no CSP violation, no script error


def test_subscriber_picker_switches_the_preview(preview_page: tuple[Page, list[str]]) -> None:
    page, problems = preview_page
    page.get_by_label("Subscriber").select_option("ayse.yilmaz@example.net")
    page.wait_for_url("**/?to=ayse.yilmaz%40example.net*")
    page.wait_for_load_state("load")
    for frame in newsletter_frames(page):
        frame.wait_for_load_state("load")
        assert "Hallo Ayşe Yılmaz" in frame.evaluate("document.body.innerText")
    assert "Hallo Ayşe Yılmaz" in page.locator("pre").inner_text()
    assert problems == []


def test_live_reload_on_article_template_and_campaign_changes(
    project: Path, preview_page: tuple[Page, list[str]]
) -> None:
    page, _ = preview_page

    def frame_text() -> str:
        return str(newsletter_frames(page)[1].evaluate("document.body.innerText"))

    article = project / "campaigns/kasachstan.md"
    article.write_text(
        article.read_text(encoding="utf-8") + "\n\nNeuerAbsatzXYZ\n", encoding="utf-8"
    )
    wait_until(page, lambda: "NeuerAbsatzXYZ" in page.locator("pre").inner_text())
    page.wait_for_load_state("load")
    newsletter_frames(page)[1].wait_for_load_state("load")
    assert "NeuerAbsatzXYZ" in frame_text()

    edit_campaign(
        project / "templates/newsletter.mjml",
        lambda t: t.replace("<h2>{{ texts.demands }}</h2>", "<h2>{{ texts.demands }}NEU</h2>"),
    )
    wait_until(page, lambda: "ForderungenNEU" in page.locator("pre").inner_text())

    edit_campaign(
        project / "campaigns/kasachstan.yaml",
        lambda t: t.replace('subject: "Solidarität', 'subject: "NEU Solidarität'),
    )
    wait_until(page, lambda: page.locator("h1").inner_text().startswith("NEU"))

    # a broken campaign shows its one-line error, and the fix brings the preview back
    edit_campaign(
        project / "campaigns/kasachstan.yaml",
        lambda t: t.replace("tls: starttls", "tls: sometimes"),
    )
    page.wait_for_selector("p.error", timeout=15000)
    assert "smtp.tls" in page.locator("p.error").inner_text()
    edit_campaign(
        project / "campaigns/kasachstan.yaml",
        lambda t: t.replace("tls: sometimes", "tls: starttls"),
    )
    page.wait_for_selector("iframe", timeout=15000)
    assert page.locator("p.error").count() == 0

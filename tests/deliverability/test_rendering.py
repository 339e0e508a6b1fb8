"""Rendering in headless Chromium at 320, 375 and 600 px: no horizontal overflow, every image
with alt text and an explicit width, WCAG AA text contrast computed in the page, nothing loaded
from the network; a full-page screenshot per width is kept in test-artifacts/."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Route, sync_playwright

from kzmail.models import Subscriber
from tests.helpers.browser import FLAGS
from tests.helpers.deliverability import Example, tool

WIDTHS = (320, 375, 600)
CHROMIUM_ARGS = FLAGS  # the same flags as the browser tests

# Runs inside the page: overflow, images, and the WCAG 2.x contrast of every visible text node
# against the background it is actually drawn on (alpha-composited up the ancestors).
AUDIT_JS = """() => {
  const rgba = c => { const p = c.match(/[\\d.]+/g).map(Number); return p.length > 3 ? p : [...p, 1]; };
  const channel = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  const lum = c => 0.2126 * channel(c[0]) + 0.7152 * channel(c[1]) + 0.0722 * channel(c[2]);
  const over = (top, under) => under.map((v, i) => top[i] * top[3] + v * (1 - top[3]));
  const background = el => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = rgba(getComputedStyle(e).backgroundColor);
      if (c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
    }
    return layers.reverse().reduce((under, top) => over(top, under), [255, 255, 255]);
  };
  const images = [];
  for (const img of document.images) {
    const alt = (img.getAttribute('alt') || '').trim();
    const width = img.getAttribute('width') || img.style.width;
    if (!alt) images.push('image without alt text: ' + img.src);
    if (!width) images.push('image without explicit width: ' + img.src);
  }
  const contrast = [];
  const seen = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  let texts = 0;
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!node.textContent.trim() || !el || seen.has(el)) continue;
    seen.add(el);
    if (!el.checkVisibility({opacityProperty: true, visibilityProperty: true})) continue;
    texts++;
    const style = getComputedStyle(el);
    const bg = background(el);
    const fg = over(rgba(style.color), bg);
    const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(style.fontSize), bold = Number(style.fontWeight) >= 700;
    const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (ratio < need) contrast.push(`${ratio.toFixed(2)} < ${need}: "${node.textContent.trim().slice(0, 40)}" (${style.color} on rgb(${bg.map(Math.round)}))`);
  }
  return {overflow: document.documentElement.scrollWidth - window.innerWidth,
          images: document.images.length, imageProblems: images, texts, contrast};
}"""


@dataclass(frozen=True)
class Audit:
    width: int
    overflow: int
    images: int
    image_problems: list[str]
    texts: int
    contrast: list[str]
    requests: list[str]

    def problems(self) -> list[str]:
        found = [*self.image_problems, *self.contrast]
        if self.overflow > 0:
            found.insert(0, f"{self.overflow}px horizontal overflow at {self.width}px")
        found += [f"loads {url}" for url in self.requests]
        return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    path = tool("chromium", "/usr/bin/chromium")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def audit(browser: Browser, html: str, width: int, screenshot: Path | None = None) -> Audit:
    page = browser.new_page(viewport={"width": width, "height": 800})
    requests: list[str] = []

    def refuse(route: Route) -> None:  # nothing leaves the machine; we only count
        requests.append(route.request.url)
        route.abort()

    page.route("**/*", refuse)
    try:
        page.set_content(html, wait_until="load")
        found: dict[str, Any] = page.evaluate(AUDIT_JS)
        if screenshot is not None:  # the whole message, and its first screen
            page.screenshot(path=str(screenshot), full_page=True)
            page.screenshot(path=str(screenshot.with_name(screenshot.stem + "-top.png")))
    finally:
        page.close()
    return Audit(
        width,
        found["overflow"],
        found["images"],
        found["imageProblems"],
        found["texts"],
        found["contrast"],
        requests,
    )


@pytest.fixture(scope="module")
def personalised(example: Example) -> list[str]:
    """The first subscriber's HTML, and one with a long name and a long unbreakable address."""
    first = example.built[0].parts.html
    long = Subscriber(
        "lena.schroeder-krueger.aus.dresden-neustadt@beispiel-organisation.example",
        "Lena Schröder-Krüger-Hohenzollern-Sigmaringen",
    )
    url = "https://newsletter.arbeiterinnenmacht.example.org/u/" + "A" * 120
    return [first, example.prepared.template.render(long, url).html]


@pytest.mark.parametrize("width", WIDTHS)
def test_personalised_html_renders_cleanly(
    browser: Browser, personalised: list[str], width: int, artifacts: Path
) -> None:
    for index, html in enumerate(personalised):
        shot = artifacts / f"render-{width}.png" if index == 0 else None
        result = audit(browser, html, width, shot)
        assert result.problems() == [], (index, result)
        assert result.texts > 20  # the audit did look at the text
        if shot is not None:
            assert shot.stat().st_size > 10_000


# --- each check fails on a deliberately broken page -----------------------------------------


def _page(body: str) -> str:
    return f'<!doctype html><html lang="de"><body style="margin:0">{body}</body></html>'


def test_overflow_check_catches_a_fixed_width_table(browser: Browser) -> None:
    broken = _page('<table width="600" style="width:600px"><tr><td>Breit</td></tr></table>')
    assert any("overflow" in p for p in audit(browser, broken, 320).problems())
    assert audit(browser, broken, 600).problems() == []


def test_image_check_catches_missing_alt_and_width(browser: Browser) -> None:
    pixel = (
        "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4"
        "nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg=="
    )
    good = audit(browser, _page(f'<img src="{pixel}" alt="Logo" width="40">'), 375)
    assert good.images == 1
    assert good.problems() == []
    broken = audit(browser, _page(f'<img src="{pixel}">'), 375).problems()
    assert any("alt" in p for p in broken)
    assert any("width" in p for p in broken)


def test_contrast_check_catches_light_grey_text(browser: Browser) -> None:
    grey = audit(browser, _page('<p style="color:#999999">Kaum lesbar</p>'), 375)
    assert any("Kaum lesbar" in p for p in grey.problems())
    # large bold text needs only 3:1; #8b0000 on #f2efeb passes both ways, #e08080 on white not
    assert (
        audit(browser, _page('<p style="color:#8b0000;background:#f2efeb">Rot</p>'), 375).problems()
        == []
    )
    pink = _page('<h1 style="color:#e08080;font-size:30px">Rosa</h1>')
    assert audit(browser, pink, 375).problems()


def test_network_check_catches_a_remote_image(browser: Browser) -> None:
    result = audit(
        browser, _page('<img src="https://tracker.example/o.gif" alt="x" width="1">'), 375
    )
    assert result.requests == ["https://tracker.example/o.gif"]
    assert result.problems()

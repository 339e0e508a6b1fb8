"""The official MJML compiler (npm `mjml`, strict validation) accepts the template, so no tag or
attribute is silently dropped by mjml-python; both compilers yield the same visible text."""

from __future__ import annotations

import html
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from mjml import mjml2html

from kzmail.models import Campaign
from kzmail.render import template as render
from tests.helpers.campaigns import REPO
from tests.helpers.deliverability import Example, tool

MJML = REPO / ".cache" / "npm" / "node_modules" / ".bin" / "mjml"


def official_mjml(source: str, scratch: Path) -> subprocess.CompletedProcess[str]:
    """Compile with the official compiler in strict mode (non-zero exit on any invalid tag)."""
    path = scratch / "template.mjml"
    path.write_text(source, encoding="utf-8")
    return subprocess.run(
        [tool("mjml", str(MJML)), str(path), "-s", "--config.validationLevel=strict"],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _visible(markup: str) -> str:
    markup = re.sub(r"(?is)<(style|head)\b.*?</\1>|<!--.*?-->", " ", markup)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", markup))).strip()


def _tokens_apart(text: str) -> str:
    return re.sub(r"(kzjinja\d+x)\s*(?=kzjinja)", r"\1 ", text)


def test_template_passes_strict_validation(tmp_path: Path) -> None:
    source = (REPO / "templates" / "newsletter.mjml").read_text(encoding="utf-8")
    done = official_mjml(source, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "{% for d in demands %}" in done.stdout  # Jinja tags pass through untouched


def handed_to_mjml(campaign: Campaign, monkeypatch: pytest.MonkeyPatch) -> str:
    """Exactly what compiling `campaign` hands to mjml-python: campaign values filled in,
    Jinja tags as tokens (caught on its way in, so it is kzmail's own, not a re-creation)."""
    sources: list[str] = []

    def catching(source: str, *args: Any, **kwargs: Any) -> str:
        sources.append(source)
        return mjml2html(source, *args, **kwargs)

    monkeypatch.setattr(render, "mjml2html", catching)
    render.compile_campaign(campaign)
    (source,) = sources
    return source


def test_filled_template_passes_and_both_compilers_agree(
    example: Example, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    protected = handed_to_mjml(example.prepared.campaign, monkeypatch)
    done = official_mjml(protected, tmp_path)
    assert done.returncode == 0, done.stderr
    ours = mjml2html(protected, fonts={}, disable_comments=True)
    # whitespace between two Jinja tokens (two <mj-raw>s side by side) is not shown
    assert _tokens_apart(_visible(ours)) == _tokens_apart(_visible(done.stdout))
    assert "Internationale Solidarität" in _visible(ours)


def test_strict_validation_rejects_a_broken_template(tmp_path: Path) -> None:
    source = (REPO / "templates" / "newsletter.mjml").read_text(encoding="utf-8")
    for broken in (
        source.replace('<mj-text css-class="intro"', '<mj-text colour="red" css-class="intro"', 1),
        source.replace("<mj-divider />", "<mj-spacer-line />", 1),
    ):
        assert broken != source
        done = official_mjml(broken, tmp_path)
        assert done.returncode != 0
        assert "ValidationError" in done.stderr, done.stderr
        mjml2html(broken, fonts={}, disable_comments=True)  # mjml-python says nothing

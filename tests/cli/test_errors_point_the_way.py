"""Errors that point the right way: each mistake is one line naming the file, the line and
the name at fault, says what there is instead, and exits 2 without a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers.campaigns import edit_campaign

KZMAIL = Path(sys.executable).with_name("kzmail")
CAMPAIGN = "campaigns/kasachstan.yaml"


def _one_error(project: Path) -> str:
    """`kzmail check`'s error line (the run must fail with exactly one, exit 2)."""
    done = subprocess.run(
        [str(KZMAIL), "check", CAMPAIGN],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
        check=False,
    )
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stdout + done.stderr
    errors = [line for line in (done.stdout + done.stderr).splitlines() if "error:" in line]
    assert len(errors) == 1, done.stdout + done.stderr
    return errors[0]


def _line_of(path: Path, text: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(number for number, line in enumerate(lines, 1) if text in line)


def test_a_misspelt_key_is_named_with_the_right_spelling(project: Path) -> None:
    edit_campaign(project / CAMPAIGN, lambda t: t.replace("\nsubject:", "\nsubjet:"))
    line = _line_of(project / CAMPAIGN, "subjet:")
    error = _one_error(project)
    assert f"kasachstan.yaml:{line}: subjet: unknown key; did you mean subject?" in error
    assert "required key is missing" not in error


def test_a_misspelt_nested_key_is_named_too(project: Path) -> None:
    edit_campaign(project / CAMPAIGN, lambda t: t.replace("  tls: starttls", "  tsl: starttls"))
    line = _line_of(project / CAMPAIGN, "tsl:")
    assert f"kasachstan.yaml:{line}: smtp.tsl: unknown key; did you mean tls?" in _one_error(
        project
    )


def test_an_http_unsubscribe_url_gets_a_sentence_not_a_regex(project: Path) -> None:
    edit_campaign(
        project / CAMPAIGN,
        lambda t: t.replace('url: "https://newsletter', 'url: "http://newsletter'),
    )
    line = _line_of(project / CAMPAIGN, 'url: "http://newsletter')
    error = _one_error(project)
    assert f"kasachstan.yaml:{line}: unsubscribe.url: must start with https://" in error
    assert "because" in error
    assert "pattern" not in error and "^https" not in error


def test_an_unknown_subscriber_field_lists_the_list_s_fields(project: Path) -> None:
    template = project / "templates/newsletter.mjml"
    edit_campaign(template, lambda t: t.replace("subscriber.email)", "subscriber.emial)"))
    line = _line_of(template, "subscriber.emial")
    error = _one_error(project)
    assert f"newsletter.mjml:{line}: subscriber.emial: unknown subscriber field 'emial'" in error
    assert "did you mean email?" in error
    assert (
        "subscriber.city, subscriber.email, subscriber.first_name, subscriber.name" in error
    )  # the list's columns


def test_an_unknown_campaign_value_lists_the_campaign_s_values(project: Path) -> None:
    template = project / "templates/newsletter.mjml"
    edit_campaign(template, lambda t: t.replace("{{ author }}", "{{ autor }}"))
    line = _line_of(template, "{{ autor }}")
    error = _one_error(project)
    assert f"newsletter.mjml:{line}: autor: unknown campaign value 'autor'" in error
    assert "did you mean author?" in error
    for name in ("title", "lead", "demands", "sources", "subscriber.NAME", "unsubscribe_url"):
        assert name in error


def test_an_article_that_is_not_utf8_names_the_article_file_and_line(project: Path) -> None:
    article = project / "campaigns/kasachstan.md"
    text = article.read_text(encoding="utf-8")
    article.write_bytes(text.encode("utf-8") + b"\n\nStra\xdfe in Latin-1\n")
    line = text.count("\n") + 3
    error = _one_error(project)
    assert f"kasachstan.md:{line}: the article is not UTF-8 text (byte 0xdf)" in error
    assert "newsletter.mjml" not in error and "kasachstan.yaml" not in error

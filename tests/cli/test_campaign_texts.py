"""The template's fixed texts come from the campaign (`texts:`, defaults per `language`),
optional sections vanish when empty, and the greeting uses a first name when there is one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kzmail.cli.main import cli
from tests.helpers.campaigns import GERMAN_FIXED_TEXTS, edit_campaign

ENGLISH = """\
name: meeting
subject: "Meeting on Friday"
from: "Our group <news@example.org>"
language: en
list_id: meeting.example.org
list_name: "Our newsletter"
reason: "You subscribed to our newsletter."
article:
  title: "Meeting on Friday"
  author: "Our group"
  file: meeting.md
subscribers: ../list.csv
unsubscribe:
  url: "https://news.example.org"
"""


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def english(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An English campaign without demands, sources or lead, and without `template:`."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KZMAIL_STATE_DIR", str(tmp_path / ".kzmail"))
    (tmp_path / "campaigns").mkdir()
    (tmp_path / "campaigns/meeting.md").write_text("We meet at **six**.\n", encoding="utf-8")
    (tmp_path / "list.csv").write_text(
        "email,Vorname,Nachname\nanna@example.org,Anna,Smith\nbo@example.org,,\n",
        encoding="utf-8",
    )
    campaign = tmp_path / "campaigns/meeting.yaml"
    campaign.write_text(ENGLISH, encoding="utf-8")
    return campaign


def preview(campaign: Path, subscriber: str = "anna@example.org") -> tuple[str, str]:
    code, _, err = run("preview", str(campaign), "--subscriber", subscriber)
    assert code == 0, err
    out = campaign.parent.parent / "preview"
    return (out / "meeting.html").read_text(), (out / "meeting.txt").read_text()


def visible(html: str) -> str:
    """The HTML part's text as a reader sees it (tags, comments and styles out)."""
    html = re.sub(r"(?is)<(style|head)\b.*?</\1>|<!--.*?-->", " ", html)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_an_english_campaign_has_english_texts_and_no_empty_sections(english: Path) -> None:
    html, text = preview(english)
    for part in (visible(html), text):
        for german in GERMAN_FIXED_TEXTS:
            assert german not in part
        assert "By Our group" in part
        assert "Hello Anna," in part  # the first name, from the Vorname column
        assert "This email was sent to anna@example.org." in part
        assert "Unsubscribe from this newsletter" in part
        for heading in ("Our demands", "Sources"):
            assert heading not in part  # no heading for an empty section
    assert 'class="demands' not in html and 'class="sources' not in html  # nor its box
    assert html.count('bgcolor="#8b0000"') == 2  # the red header's; no red demands box
    assert "\n\n\n" not in text  # a left-out section leaves no gap


def test_without_a_name_the_greeting_is_neutral(english: Path) -> None:
    html, text = preview(english, "bo@example.org")
    assert "Hello," in text and "Hello ," not in text
    assert "Hello," in visible(html)


def test_texts_override_the_defaults_and_stay_data(english: Path) -> None:
    edit_campaign(
        english,
        lambda t: (
            t + 'texts:\n  unsubscribe: "Leave the list {{ 7*7 }}"\n  greeting: "Hi {name}!"\n'
        ),
    )
    html, text = preview(english)
    for part in (visible(html), text):
        assert "Leave the list {{ 7*7 }}" in part  # shown as written, never evaluated
        assert "Hi Anna!" in part
        assert "By Our group" in part  # the keys not given keep the language's defaults


def test_an_unknown_text_key_is_named_with_file_and_line(english: Path) -> None:
    edit_campaign(english, lambda t: t + "texts:\n  unsubscrib: Leave\n")
    code, _, err = run("check", str(english))
    assert code == 2
    line = ENGLISH.count("\n") + 2
    assert f"meeting.yaml:{line}: texts.unsubscrib: unknown key" in err, err


def test_a_text_without_its_placeholder_is_refused(english: Path) -> None:
    edit_campaign(english, lambda t: t + 'texts:\n  sent_to: "Sent to you."\n')
    code, _, err = run("check", str(english))
    assert code == 2
    assert "texts.sent_to: must contain {email}" in err, err


def test_russian_defaults(english: Path) -> None:
    edit_campaign(english, lambda t: t.replace("language: en", "language: ru"))
    _, text = preview(english)
    assert "Здравствуйте, Anna!" in text
    assert "Отписаться от рассылки" in text


def test_the_german_demo_keeps_its_texts_and_sections(project: Path) -> None:
    code, _, err = run("preview")
    assert code == 0, err
    text = (project / "preview/kasachstan.txt").read_text()
    html = visible((project / "preview/kasachstan.html").read_text())
    for part in (text, html):
        assert "Von Gruppe ArbeiterInnenmacht" in part
        assert "Hallo Jürgen Müller," in part  # no first-name column: the name, as before
        assert "Unsere Forderungen" in part and "Quellen" in part
        assert "Diese E-Mail ging an juergen.mueller@example.org." in part
        assert "Vom Newsletter abmelden" in part

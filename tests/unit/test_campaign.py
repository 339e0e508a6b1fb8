"""Loading and validating campaign files: every mistake names file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from kzmail import campaign_file as campaign
from kzmail.errors import CampaignError, SeveralCampaigns
from tests.helpers.campaigns import edit_campaign


def test_example_campaign_loads_with_resolved_paths(project: Path) -> None:
    c = campaign.load(project / "campaigns/kasachstan.yaml")
    assert c.name == "kasachstan"
    assert c.template == project / "templates/newsletter.mjml"
    assert c.list_paths == [project / "subscribers.example.csv"]
    assert c.article.file == project / "campaigns/kasachstan.md"
    assert c.article.author == "Gruppe ArbeiterInnenmacht"
    assert len(c.demands) == 3
    assert c.smtp.is_local
    assert all(s.url.startswith("http") for s in c.article.sources)


def _error(path: Path) -> CampaignError:
    with pytest.raises(CampaignError) as info:
        campaign.load(path)
    return info.value


def _line_of(path: Path, text: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


def test_missing_key_names_file_and_key(project: Path) -> None:
    path = project / "campaigns/kasachstan.yaml"
    edit_campaign(path, lambda t: t.replace("subject:", "subjekt:"))
    error = _error(path)
    assert error.path == str(path)
    assert error.key in {"subject", "subjekt"}
    assert "kasachstan.yaml:" in str(error)


def test_unknown_key_points_at_its_line(project: Path) -> None:
    path = project / "campaigns/kasachstan.yaml"
    edit_campaign(path, lambda t: t.replace("  per_hour: 0", "  per_hour: 0\n  per_minut: 5"))
    error = _error(path)
    assert error.key == "rate.per_minut"
    assert error.line == _line_of(path, "per_minut")


def test_bad_value_points_at_its_line(project: Path) -> None:
    path = project / "campaigns/kasachstan.yaml"
    edit_campaign(path, lambda t: t.replace("tls: starttls", "tls: maybe"))
    error = _error(path)
    assert error.key == "smtp.tls"
    assert error.line == _line_of(path, "tls: maybe")


def test_wrong_path_is_reported_with_key(project: Path) -> None:
    path = project / "campaigns/kasachstan.yaml"
    edit_campaign(path, lambda t: t.replace("../subscribers.example.csv", "../nope.csv"))
    error = _error(path)
    assert error.key == "subscribers"
    assert "nope.csv" in str(error)
    assert error.line == _line_of(path, "nope.csv")


def test_bad_yaml_names_the_line(project: Path) -> None:
    path = project / "campaigns/kasachstan.yaml"
    edit_campaign(path, lambda t: t.replace("language: de", "language: [de"))
    error = _error(path)
    assert "invalid YAML" in str(error)
    assert error.line is not None
    assert error.line >= _line_of(path, "language: [de")


def test_password_in_file_is_refused(project: Path) -> None:
    path = project / "campaigns/kasachstan.yaml"
    edit_campaign(
        path, lambda t: t.replace('  username: ""', '  username: ""\n  password: hunter2')
    )
    error = _error(path)
    assert error.key == "smtp.password"
    assert "password_env" in str(error)
    assert "hunter2" not in str(error)


def test_header_injection_in_subject_is_refused(project: Path) -> None:
    path = project / "campaigns/kasachstan.yaml"
    edit_campaign(
        path,
        lambda t: t.replace('subject: "Solidarität', 'subject: "Bcc: x@example.net\\nSolidarität'),
    )
    assert _error(path).key == "subject"


def test_from_with_two_addresses_is_refused(project: Path) -> None:
    path = project / "campaigns/kasachstan.yaml"
    edit_campaign(path, lambda t: t.replace('from: "Gruppe', 'from: "a@example.org, Gruppe'))
    assert _error(path).key == "from"


def test_find_single_campaign(project: Path) -> None:
    assert campaign.find_single(project / "campaigns") == project / "campaigns/kasachstan.yaml"
    (project / "campaigns/other.yaml").write_text("subject: x\n")
    with pytest.raises(SeveralCampaigns, match="several campaigns"):  # a CampaignError
        campaign.find_single(project / "campaigns")


def test_unsubscribe_mailto_must_be_a_bare_address(project: Path) -> None:
    path = project / "campaigns/kasachstan.yaml"
    edit_campaign(
        path,
        lambda t: t.replace('mailto: "abmelden@', 'mailto: "Abmelden <abmelden@').replace(
            'example.org"          # address for mailto', 'example.org>"  # address for mailto'
        ),
    )
    error = _error(path)
    assert error.key == "unsubscribe.mailto"
    assert "bare address" in str(error)


@pytest.mark.parametrize("escape", ["\\u2028", "\\u0085", "\\u202e", "\\u2066", "\\x1b"])
def test_a_subject_with_a_separator_or_bidi_control_is_refused(project: Path, escape: str) -> None:
    path = project / "campaigns/kasachstan.yaml"
    edit_campaign(
        path, lambda t: t.replace('subject: "Solidarität', f'subject: "Solidarität{escape}')
    )
    error = _error(path)
    assert error.key == "subject"
    assert "control or bidi" in str(error)


@pytest.mark.parametrize(
    "sender",
    ["jürgen@example.org", "a..b@example.org", "a@-news.example.org", "news@müller.example"],
)
def test_from_must_be_a_plain_ascii_address(project: Path, sender: str) -> None:
    """The From becomes the SMTP envelope sender, which takes no quoting and no UTF-8."""
    path = project / "campaigns/kasachstan.yaml"
    edit_campaign(
        path, lambda t: t.replace("<newsletter@arbeiterinnenmacht.example.org>", f"<{sender}>")
    )
    error = _error(path)
    assert error.key == "from"
    assert "plain e-mail address" in str(error)


def test_example_campaign_keeps_the_authors_spelling(project: Path) -> None:
    """The article writes "Arbeiter_Innen" and "ArbeiterInnenmacht"; we keep both as written."""
    c = campaign.load(project / "campaigns/kasachstan.yaml")
    title = "Solidarität mit den Arbeiter_Innen und Jugendlichen in Kasachstan!"
    assert c.subject == title
    assert c.article.title == title
    assert (
        c.article.lead == "Artikel von der Gruppe ArbeiterInnenmacht zu den Protesten in Kasachstan"
    )
    seen = [c.from_, c.list_name, c.reason, c.article.author, c.article.file.read_text("utf-8")]
    for text in seen:
        assert "Arbeiter*innen" not in text
        assert "Arbeiter innenmacht" not in text
    assert all("ArbeiterInnenmacht" in text for text in seen[:4])

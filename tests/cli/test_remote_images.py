"""Remote images through the real CLI: `check` names each remote host as a problem and
`send` refuses, unless the campaign says `allow_remote_images: true`."""

from __future__ import annotations

import mailbox
from pathlib import Path

from typer.testing import CliRunner

from kzmail.cli.main import cli
from tests.helpers.campaigns import edit_campaign

CAMPAIGN = "campaigns/kasachstan.yaml"
PHOTO = "![Foto](https://images.example/foto.jpg)"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result.exit_code, result.stdout, result.stderr


def _add_photo(project: Path) -> None:
    article = project / "campaigns/kasachstan.md"
    article.write_text(article.read_text(encoding="utf-8") + f"\n{PHOTO}\n", encoding="utf-8")


def _allow(project: Path) -> None:
    edit_campaign(project / CAMPAIGN, lambda text: text + "\nallow_remote_images: true\n")


def _messages(project: Path) -> int:
    folder = project / "outbox/kasachstan"
    return len(mailbox.Maildir(folder, create=False)) if folder.exists() else 0


def test_check_names_a_remote_image_in_the_article(project: Path) -> None:
    _add_photo(project)
    code, stdout, stderr = run("check", CAMPAIGN)
    assert code == 2  # a mistake in the files (README's exit codes)
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr
    assert "images.example" in errors[0] and "allow_remote_images" in errors[0]
    assert "Cannot be sent" in stdout


def test_check_names_each_remote_host_of_the_template(project: Path) -> None:
    template = project / "templates/newsletter.mjml"
    edit_campaign(
        template,
        lambda text: text.replace(
            '<mj-style inline="inline">',
            '<mj-raw><link rel="stylesheet" href="https://fonts.example/a.css" /></mj-raw>'
            '<mj-style inline="inline">',
        ).replace(
            '<mj-text css-class="article">{{ article }}</mj-text>',
            '<mj-image src="https://logo.example/logo.png" alt="Logo" />'
            '<mj-text css-class="article">{{ article }}'
            "<div style=\"background-image: url('https://bg.example/x.png')\">x</div>"
            '<p><a href="https://links.example/more">mehr</a></p></mj-text>',
        ),
    )
    code, _, stderr = run("check", CAMPAIGN)
    assert code == 2  # a mistake in the files (README's exit codes)
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    hosts = ["fonts.example", "logo.example", "bg.example"]
    assert len(errors) == len(hosts), stderr
    for host, line in zip(hosts, errors, strict=True):
        assert host in line
    assert "links.example" not in stderr  # a link fetches nothing until clicked


def test_send_refuses_remote_images_and_sends_nothing(project: Path) -> None:
    _add_photo(project)
    for args in (("send", CAMPAIGN, "--yes"), ("send", CAMPAIGN, "--dry-run")):
        code, _, stderr = run(*args)
        assert code != 0
        lines = [line for line in stderr.splitlines() if line.strip()]
        assert len(lines) == 1, stderr
        assert "images.example" in lines[0] and "allow_remote_images: true" in lines[0]
    assert _messages(project) == 0


def test_allow_remote_images_lets_check_and_send_go_ahead(project: Path) -> None:
    _add_photo(project)
    _allow(project)
    code, _, stderr = run("check", CAMPAIGN)
    assert code == 0, stderr
    assert "images.example" in stderr  # still said, as a warning
    assert not any(line.startswith("error:") for line in stderr.splitlines())
    code, _, stderr = run("send", CAMPAIGN)
    assert code == 0, stderr
    assert _messages(project) == 12

"""Campaign text is data, through the real CLI in a project copy: a payload in the article
or the title runs nothing at `kzmail preview` and is shown as written; a template that
reaches for Python's internals is one clear error."""

from __future__ import annotations

import html
from pathlib import Path

from typer.testing import CliRunner

from kzmail.cli.main import cli
from tests.helpers.campaigns import edit_campaign
from tests.helpers.flowed import unflow

CAMPAIGN = "campaigns/kasachstan.yaml"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def _payload(folder: str) -> str:
    return "{{ cycler.__init__.__globals__.os.popen('mkdir " + folder + "').read() }}"


def test_preview_runs_no_code_from_the_article_or_title(project: Path) -> None:
    article, title = _payload("pwned-article"), _payload("pwned-title")
    (project / "campaigns/kasachstan.md").write_text(f"Vorsicht: `{article}`\n", encoding="utf-8")
    edit_campaign(
        project / CAMPAIGN,
        lambda text: text.replace(
            '  title: "Solidarität mit den Arbeiter_Innen und Jugendlichen in Kasachstan!"',
            f'  title: "{title}"',
        ),
    )
    code, _, stderr = run("preview", CAMPAIGN)
    assert code == 0, stderr
    assert not (project / "pwned-article").exists()
    assert not (project / "pwned-title").exists()
    page = (project / "preview/kasachstan.html").read_text(encoding="utf-8")
    text = unflow((project / "preview/kasachstan.txt").read_text(encoding="utf-8"))
    for payload in (article, title):
        assert payload in html.unescape(page)  # shown, as text
        assert payload.replace("'", "&#39;") in page or payload in page
        assert payload in text
    assert "<code>" + html.escape(article, quote=False) + "</code>" in page


def test_preview_of_a_template_reaching_for_internals_is_one_line(project: Path) -> None:
    template = project / "templates/newsletter.mjml"
    edit_campaign(
        template,
        lambda text: text.replace(
            "{{ texts.by }} {{ author }}", "{{ author }} {{ cycler.__init__.__globals__ }}"
        ),
    )
    code, stdout, stderr = run("preview", CAMPAIGN)
    assert code != 0
    assert "Traceback" not in stdout + stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "newsletter.mjml" in lines[0] and "unsafe" in lines[0]
    assert not (project / "preview").exists()

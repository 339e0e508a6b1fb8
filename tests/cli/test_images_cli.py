"""Local images through the real CLI: `check` fails without alt text (naming the article
file and line) or with a missing image, and warns about sizes Gmail clips or phones pay for."""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image
from typer.testing import CliRunner

from kzmail.cli.main import cli
from kzmail.render.related import GMAIL_CLIP_BYTES
from tests.helpers.images import with_article_image

CAMPAIGN = "campaigns/kasachstan.yaml"
ARTICLE = "campaigns/kasachstan.md"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result.exit_code, result.stdout, result.stderr


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def _image_line(project: Path) -> int:
    lines = (project / ARTICLE).read_text(encoding="utf-8").splitlines()
    return next(n for n, text in enumerate(lines, 1) if "(demo.jpg)" in text)


def test_check_passes_with_a_described_image(project: Path) -> None:
    with_article_image(project / CAMPAIGN)
    code, stdout, stderr = run("check", CAMPAIGN)
    assert code == 0, stderr
    assert _errors(stderr) == [] and "OK: can be sent to 12 subscribers" in stdout


def test_check_fails_without_alt_text_naming_article_and_line(project: Path) -> None:
    with_article_image(project / CAMPAIGN, alt="")
    code, _, stderr = run("check", CAMPAIGN)
    assert code == 2
    (error,) = _errors(stderr)
    assert f"kasachstan.md:{_image_line(project)}:" in error
    assert "demo.jpg" in error and "alt text" in error


def test_missing_image_is_one_line_naming_the_file(project: Path) -> None:
    with_article_image(project / CAMPAIGN).unlink()
    code, _, stderr = run("check", CAMPAIGN)
    assert code == 2
    (error,) = _errors(stderr)
    assert f"kasachstan.md:{_image_line(project)}:" in error
    assert str(project / "campaigns/demo.jpg") in error and "cannot read it" in error


def test_check_warns_about_a_large_message_naming_its_size(project: Path) -> None:
    photo = with_article_image(project / CAMPAIGN)
    # noise does not compress: a 1200x1200 photo of it is well over 1 MB once in base64
    Image.frombytes("RGB", (1200, 1200), os.urandom(1200 * 1200 * 3)).save(photo, quality=100)
    code, _, stderr = run("check", CAMPAIGN)
    assert code == 0, stderr
    (warning,) = [line for line in stderr.splitlines() if "each message has" in line]
    assert "KB" in warning and "1 image(s)" in warning and "more than 1024 KB" in warning


def test_check_warns_when_gmail_would_clip_the_html(project: Path) -> None:
    article = project / ARTICLE
    text = article.read_text(encoding="utf-8")
    article.write_text(text * (GMAIL_CLIP_BYTES // len(text.encode()) + 1), encoding="utf-8")
    code, _, stderr = run("check", CAMPAIGN)
    assert code == 0, stderr
    (warning,) = [line for line in stderr.splitlines() if "Gmail" in line]
    assert "the HTML part has" in warning and "more than Gmail's 102 KB" in warning


def test_preview_html_shows_the_photo_from_a_file_beside_it(project: Path) -> None:
    with_article_image(project / CAMPAIGN)
    code, _, stderr = run("preview")
    assert code == 0, stderr
    html = (project / "preview/kasachstan.html").read_text(encoding="utf-8")
    assert 'src="kasachstan-image1.jpg"' in html and "cid:" not in html
    photo = Image.open(project / "preview/kasachstan-image1.jpg")
    assert photo.size == (1200, 800) and "exif" not in photo.info
    assert b"Content-ID: <img1." in (project / "preview/kasachstan.eml").read_bytes()

"""`kzmail new` scaffolds a campaign that passes `check` and `preview`; the default template
ships inside the package, so an installed kzmail needs no repository `templates/`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from kzmail.cli.main import cli
from kzmail.languages import TEXT_KEYS
from tests.helpers.campaigns import GERMAN_FIXED_TEXTS, REPO


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def empty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty folder, the current one, with no templates/ and no state."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KZMAIL_STATE_DIR", raising=False)
    return tmp_path


@pytest.mark.parametrize("language", ["de", "en", "ru"])
def test_new_then_check_and_preview(empty: Path, language: str) -> None:
    code, out, err = run("new", "meeting", "--language", language)
    assert code == 0, err
    for path in ("campaigns/meeting.yaml", "campaigns/meeting.md", "meeting-subscribers.csv"):
        assert (empty / path).is_file()
        assert path in out
    for step in ("kzmail check", "kzmail preview", "kzmail send"):
        assert f"{step} campaigns/meeting.yaml" in out  # the next commands
    assert not (empty / ".kzmail").exists()  # new makes no state
    code, out, err = run("check", "campaigns/meeting.yaml")
    assert code == 0, err
    assert "OK: can be sent to 2 subscribers" in out
    code, _, err = run("preview", "campaigns/meeting.yaml")
    assert code == 0, err
    text = (empty / "preview/meeting.txt").read_text()
    greeting = {"de": "Hallo Alex,", "en": "Hello Alex,", "ru": "Здравствуйте, Alex!"}
    assert greeting[language] in text
    if language != "de":
        assert not [g for g in GERMAN_FIXED_TEXTS if g in text]


def test_every_key_is_explained(empty: Path) -> None:
    assert run("new", "meeting", "--language", "en")[0] == 0
    source = (empty / "campaigns/meeting.yaml").read_text()
    lines = source.splitlines()
    data = yaml.safe_load(source)
    for key in data:  # every top-level key has a comment on the line above it
        index = next(i for i, line in enumerate(lines) if line.startswith(f"{key}:"))
        assert lines[index - 1].startswith("#"), key
    assert "template" not in data  # the packaged default is used
    for key in TEXT_KEYS:  # every text is shown, commented, with the language's default
        assert f"#   {key}: " in source
    assert '#   unsubscribe: "Unsubscribe from this newsletter"' in source


def test_new_never_overwrites(empty: Path) -> None:
    assert run("new", "meeting")[0] == 0
    (empty / "campaigns/meeting.md").write_text("mine\n", encoding="utf-8")
    (empty / "campaigns/meeting.yaml").unlink()
    code, _, err = run("new", "meeting")
    assert code == 2
    assert "meeting.md: exists already" in err, err
    assert (empty / "campaigns/meeting.md").read_text() == "mine\n"
    assert not (empty / "campaigns/meeting.yaml").exists()  # nothing half-written


def test_new_refuses_a_bad_name_and_an_unknown_language(empty: Path) -> None:
    code, _, err = run("new", "../x")
    assert code == 2 and "not a campaign name" in err
    code, _, err = run("new", "x", "--language", "fr")
    assert code == 2 and "de, en, ru" in err
    assert not (empty / "campaigns").exists()


def installed_copy(target: Path) -> Path:
    """kzmail as a wheel installs it: the package's .py files plus exactly the package data
    pyproject.toml declares (nothing else of the repository)."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["kzmail"]
    source = REPO / "src" / "kzmail"
    files = {p for p in source.rglob("*.py") if "__pycache__" not in p.parts}
    for pattern in patterns:
        files |= {p for p in source.glob(pattern) if p.is_file()}
    for path in files:
        copy = target / "kzmail" / path.relative_to(source)
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, copy)
    return target


def test_an_installed_kzmail_works_without_the_repository(tmp_path: Path) -> None:
    site = installed_copy(tmp_path / "site")
    project = tmp_path / "project"
    project.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("KZMAIL_STATE_DIR", None)
    for args in (["new", "meeting", "--language", "en"], ["preview", "campaigns/meeting.yaml"]):
        done = subprocess.run(
            [sys.executable, "-m", "kzmail", *args],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
    assert not (project / "templates").exists()
    assert "Hello Alex," in (project / "preview/meeting.txt").read_text()
    assert "Unsubscribe from this newsletter" in (project / "preview/meeting.html").read_text()


def test_the_demo_template_is_the_packaged_one() -> None:
    """templates/newsletter.mjml is the demo's copy of the default: they never drift apart."""
    packaged = REPO / "src/kzmail/assets/newsletter.mjml"
    assert (REPO / "templates/newsletter.mjml").read_bytes() == packaged.read_bytes()

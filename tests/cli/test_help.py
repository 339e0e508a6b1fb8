"""Every command's --help, as a user reads it: no type placeholders (`<bool>`,
`<list[Path]>`), metavars in one style, and the main help says the exit codes and where the
state folder is."""

from __future__ import annotations

import re

import pytest
import typer.main
from typer.testing import CliRunner

from kzmail.cli.main import cli

_ROOT = typer.main.get_command(cli)


def command_paths() -> list[list[str]]:
    """Every command and group below the root, as the words that name it."""
    found: list[list[str]] = []

    def walk(command: object, path: list[str]) -> None:
        commands = getattr(command, "commands", {})
        for name, sub in sorted(commands.items()):
            found.append([*path, name])
            walk(sub, [*path, name])

    walk(_ROOT, [])
    return found


def help_of(*words: str) -> str:
    result = CliRunner().invoke(cli, [*words, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("words", [[], *command_paths()], ids=lambda w: " ".join(w) or "kzmail")
def test_help_has_no_type_placeholders(words: list[str]) -> None:
    text = help_of(*words)
    assert not re.search(r"<[a-z][\w\[\], ]*>", text), text  # <bool>, <list[Path]>, <int range>
    usage = next(line for line in text.splitlines() if "Usage:" in line)
    assert "{" not in usage, usage  # typer's {campaign} for a required argument
    for name in re.findall(r"\[?([A-Za-z_|]+)\]?(?:\.\.\.)?$", usage.split("[OPTIONS]")[-1]):
        assert name.isupper() or name == "ARGS", usage  # CAMPAIGN, [CAMPAIGN], FILE, LIST


def test_every_command_is_covered() -> None:
    names = {" ".join(words) for words in command_paths()}
    assert {"new", "send", "check", "preview", "unsubscribes import", "secret rotate"} <= names


def test_main_help_gives_the_exit_codes_and_the_state_folder() -> None:
    text = " ".join(help_of().split())
    for code in ("0 done", "1 general error", "2 a mistake", "3 some deliveries failed"):
        assert code in text
    assert "4 the send paused" in text and "130 interrupted" in text
    assert ".kzmail/" in text and "KZMAIL_STATE_DIR" in text
    assert "kzmail new NAME" in text


def test_to_says_it_takes_the_list_row() -> None:
    text = " ".join(help_of("send").split())
    assert re.search(r"--to\s+ADDRESS\s", text)
    assert "the list's first row gives the extra fields" in text


def test_flags_show_no_value() -> None:
    text = help_of("send")
    line = next(line for line in text.splitlines() if "--dry-run" in line)
    assert re.search(r"--dry-run\s+Build every message", line), line

"""Text kzmail did not write (paths, names, replies) reaches the terminal as written: no
Rich markup is read from it, and no control sequence steers the terminal."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from kzmail.cli.common import out
from kzmail.cli.main import cli

OSC8 = "\x1b]8;;https://evil.example/\x1b\\"


def test_markup_in_a_path_is_printed_as_written(project: Path) -> None:
    result = CliRunner().invoke(cli, ["check", "campaigns/[/old][bold]x.yaml"])
    assert result.exit_code in (1, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "[/old][bold]x.yaml" in result.output


def test_an_escape_sequence_in_a_path_never_reaches_the_terminal(project: Path) -> None:
    result = CliRunner().invoke(cli, ["check", f"campaigns/{OSC8}x.yaml"])
    assert result.exit_code in (1, 2), result.output
    assert "\x1b" not in result.output
    assert "x.yaml" in result.output


def test_a_reply_from_a_markup_address_is_shown_as_written(project: Path) -> None:
    (project / "in.txt").write_text(
        '"[/bold]"@example.org\nnot an address [/red]\n', encoding="utf-8"
    )
    result = CliRunner().invoke(cli, ["unsubscribes", "import", "in.txt"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "[/red]" in result.output


def test_printed_text_keeps_line_breaks_and_tabs_and_nothing_else_that_steers() -> None:
    with out.capture() as captured:
        out.print("a\tb\nc\rd\x1b[31me\u202ef\u2028g\x85h", soft_wrap=True)
    assert captured.get() == "a\tb".expandtabs() + "\nc?d?[31me?f?g?h\n"  # Rich expands tabs

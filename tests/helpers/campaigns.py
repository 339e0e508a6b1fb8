"""The example project copied for a test, and small edits of its campaign file."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

from tests.helpers.smtp import SmtpServer

REPO = Path(__file__).resolve().parents[2]


def copy_project(root: Path) -> Path:
    """Copy the example campaign, template and list into `root`; return the campaign file."""
    for name in ("campaigns", "templates"):
        shutil.copytree(REPO / name, root / name)
    shutil.copy(REPO / "subscribers.example.csv", root / "subscribers.example.csv")
    return root / "campaigns" / "kasachstan.yaml"


def edit_campaign(path: Path, change: Callable[[str], str]) -> None:
    """Rewrite the file at `path` (a campaign, a template) with `change` applied to its text."""
    path.write_text(change(path.read_text(encoding="utf-8")), encoding="utf-8")


def use_relay(campaign: Path, server: SmtpServer) -> None:
    """Point the campaign at a real SMTP server instead of the embedded sink."""
    edit_campaign(
        campaign,
        lambda text: (
            text.replace("host: local", f"host: {server.host}")
            .replace("port: 587", f"port: {server.port}")
            .replace("tls: starttls", "tls: none")
        ),
    )


def use_long_list(campaign: Path, rows: int) -> None:
    """Give the campaign a list of `rows` subscribers (leser0@example.org, ...) and one
    connection, so that the sender reads the list (4 rows ahead) while it sends."""
    lines = "".join(f"leser{i}@example.org,Leser {i}\n" for i in range(rows))
    (campaign.parent.parent / "long.csv").write_text("email,name\n" + lines, encoding="utf-8")
    edit_campaign(
        campaign,
        lambda text: text.replace(
            "subscribers: ../subscribers.example.csv", "subscribers: ../long.csv"
        ).replace("connections: 4", "connections: 1"),
    )


def status_on_disk(state_db: Path, address: str) -> str | None:
    """A delivery's status as a crash at this moment would leave it, read by a connection
    of our own: the latest mark in the log (a later Journal folds it in), else the row."""
    db = sqlite3.connect(state_db)
    try:
        row = db.execute(
            "SELECT status FROM marks WHERE address=? ORDER BY rowid DESC LIMIT 1", (address,)
        ).fetchone()
        row = (
            row
            or db.execute("SELECT status FROM deliveries WHERE address=?", (address,)).fetchone()
        )
    finally:
        db.close()
    return None if row is None else str(row[0])


# The fixed texts of the German default template: none may show in a campaign in English.
GERMAN_FIXED_TEXTS = (
    "Von ",
    "Hallo",
    "Unsere Forderungen",
    "Quellen",
    "Diese E-Mail ging an",
    "Vom Newsletter abmelden",
)


def new_campaign(root: Path, name: str, *options: str) -> Path:
    """`kzmail new NAME [options]` run in `root` (through the CLI); the campaign file."""
    from typer.testing import CliRunner

    from kzmail.cli.main import cli

    result = CliRunner().invoke(cli, ["new", name, *options])
    assert result.exit_code == 0, result.output
    return root / "campaigns" / f"{name}.yaml"

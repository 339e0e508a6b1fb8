"""One place for errors: one line and the README's exit code; the cause with KZMAIL_DEBUG=1."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

KZMAIL = Path(sys.executable).with_name("kzmail")


def _run(project: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(KZMAIL), *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
        check=False,
    )


def test_version_is_printed_and_exits_0(project: Path) -> None:
    done = _run(project, "--version")
    assert done.returncode == 0
    assert done.stdout == f"kzmail {version('kzmail')}\n"


def test_a_state_error_is_one_line_and_exit_1_and_the_cause_only_on_request(project: Path) -> None:
    (project / ".kzmail").write_text("not a folder")
    done = _run(project, "status", "campaigns/kasachstan.yaml")
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("error: cannot open the state database")
    assert len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr
    debug = _run(project, "status", "campaigns/kasachstan.yaml", KZMAIL_DEBUG="1")
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr
    assert "The above exception was the direct cause" in debug.stderr  # the chain is kept
    assert debug.stderr.strip().splitlines()[-1].startswith("error: cannot open the state")


def test_a_mistake_in_a_file_exits_2_from_every_command(project: Path) -> None:
    campaign = project / "campaigns/kasachstan.yaml"
    campaign.write_text(
        campaign.read_text(encoding="utf-8").replace("subject:", "subjekt:"), encoding="utf-8"
    )
    for command in (
        ["check", str(campaign)],
        ["send", str(campaign), "--dry-run"],
        ["preview", str(campaign)],
        ["status", str(campaign)],
    ):
        done = _run(project, *command)
        assert done.returncode == 2, (command, done.stderr)
        assert "kasachstan.yaml" in done.stderr


HEAVY = (
    "mjml",
    "premailer",
    "lxml",
    "cryptography",
    "starlette",
    "uvicorn",
    "aiosmtplib",
    "aiosmtpd",
    "python_calamine",
    "openpyxl",
    "xlrd",
    "jinja2",
    "sqlite3",
    "yaml",
    "pydantic",
    "email_validator",
    "dns",
    "h11",
)


def test_help_and_version_load_none_of_the_heavy_libraries(project: Path) -> None:
    probe = (
        "import sys\n"
        "from kzmail.cli.main import main\n"
        "sys.argv = ['kzmail', sys.argv[1]]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))\n"
    )
    for flag in ("--help", "--version"):
        done = subprocess.run(
            [sys.executable, "-c", probe, flag],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert done.stdout.strip().splitlines()[-1] == "[]", (flag, done.stdout[-500:])

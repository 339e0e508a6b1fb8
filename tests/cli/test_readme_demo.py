"""The README's first command, `./dev demo`, run as written on a copy of the repository."""

from __future__ import annotations

import email
import email.policy
import mailbox
import os
import shutil
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_readme_names_the_two_commands() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "./dev demo" in readme
    assert "./dev test" in readme
    assert "./dev test" in (REPO / ".ci/run").read_text(encoding="utf-8")


def test_dev_demo_fills_the_outbox_with_one_message_per_valid_row(tmp_path: Path) -> None:
    for name in ("dev", "pyproject.toml", "subscribers.example.csv"):
        shutil.copy2(REPO / name, tmp_path / name)
    for name in ("campaigns", "templates"):
        shutil.copytree(REPO / name, tmp_path / name)
    env = {k: v for k, v in os.environ.items() if k != "KZMAIL_STATE_DIR"}
    env.update(KZMAIL_VENV=sys.prefix, KZMAIL_SKIP_SETUP="1")
    for _ in range(2):  # twice: a second demo must not pile up messages
        done = subprocess.run(
            ["bash", str(tmp_path / "dev"), "demo"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    assert "preview/kasachstan.html" in done.stdout
    rows = (tmp_path / "subscribers.example.csv").read_text(encoding="utf-8").splitlines()[1:]
    box = mailbox.Maildir(tmp_path / "outbox/kasachstan", create=False)
    messages = []
    for key in box.iterkeys():
        message = email.message_from_bytes(box.get_bytes(key), policy=email.policy.strict)
        assert isinstance(message, EmailMessage)
        assert not message.defects
        messages.append(message)
    assert len(messages) == len([r for r in rows if r.strip()])
    for message in messages:
        to = message["To"].addresses[0]
        text, html = (part.get_content() for part in message.iter_parts())
        url = message["List-Unsubscribe"].split("<", 1)[1].split(">", 1)[0]
        assert url.startswith("https://") and "/u/" in url
        assert url in text and url in html
        if to.display_name:
            assert to.display_name in text
            assert to.display_name in html
    assert (tmp_path / ".kzmail/secret.key").exists()

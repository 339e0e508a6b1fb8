"""Shared fixtures: a project copy in tmp_path and real SMTP servers on loopback.

The helpers they are built from live in `tests.helpers`; tests import them from there.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP

from tests.helpers.campaigns import REPO, copy_project
from tests.helpers.smtp import RecordingHandler, SmtpServer, smtp_in_thread


@pytest.fixture(autouse=True, scope="session")
def _fast_fqdn() -> Iterator[None]:
    """aiosmtpd asks socket.getfqdn(), which is slow on machines without DNS."""
    original = socket.getfqdn
    socket.getfqdn = lambda name="": "localhost"
    yield
    socket.getfqdn = original


@pytest.fixture(autouse=True, scope="session")
def _children_run_this_checkout() -> Iterator[None]:
    """Child processes (`kzmail` run as a console script) import this checkout's kzmail.

    A relative PYTHONPATH (`src:.`) would not survive `project`'s chdir, and the venv's
    editable install may point at another checkout: the child would test other code."""
    with pytest.MonkeyPatch.context() as patch:
        path = [str(REPO / "src"), str(REPO), os.environ.get("PYTHONPATH", "")]
        patch.setenv("PYTHONPATH", os.pathsep.join(p for p in path if p))
        yield


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the example campaign, template and list; cwd and state folder inside it."""
    copy_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KZMAIL_STATE_DIR", str(tmp_path / ".kzmail"))
    return tmp_path


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real aiosmtpd server on a free loopback port that records every message."""
    handler = RecordingHandler()
    factory = lambda: SMTP(handler, hostname="test.localhost", decode_data=False)  # noqa: E731
    with smtp_in_thread(factory) as port:
        yield SmtpServer("127.0.0.1", port, handler)

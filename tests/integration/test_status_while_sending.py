"""`kzmail status` during a running send shows the messages in flight as `sending`, and
only a crash makes them `uncertain`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import fsync_sink as sink_script
from tests.helpers.campaigns import edit_campaign

SINK = Path(sink_script.__file__)
KZMAIL = Path(sys.executable).with_name("kzmail")
CAMPAIGN = "campaigns/kasachstan.yaml"


@pytest.fixture
def slow_sink(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A sink that takes two messages, then holds every DATA until `release` exists, so the
    send is certainly mid-transaction however slow the machine is."""
    record = tmp_path / "received.tsv"
    record.touch()
    release = tmp_path / "release"
    proc = subprocess.Popen(
        [sys.executable, str(SINK), str(record), "0.01", "2", str(release)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        yield int(proc.stdout.readline()), record
    finally:
        proc.kill()
        proc.wait(10)


def _point_at(project: Path, port: int) -> None:
    edit_campaign(
        project / CAMPAIGN,
        lambda text: (
            text.replace("host: local", "host: 127.0.0.1")
            .replace("port: 587", f"port: {port}")
            .replace("tls: starttls", "tls: none")
            .replace("per_second: 10", "per_second: 0")
            .replace("connections: 4", "connections: 2")
        ),
    )


def _status(project: Path) -> tuple[dict[str, int], str]:
    counts = subprocess.run(
        [str(KZMAIL), "status", CAMPAIGN, "--json"], cwd=project, capture_output=True,
        text=True, timeout=60, check=True,
    )  # fmt: skip
    text = subprocess.run(
        [str(KZMAIL), "status", CAMPAIGN], cwd=project, capture_output=True, text=True,
        timeout=60, check=True,
    )  # fmt: skip
    return json.loads(counts.stdout), text.stdout


def _wait_for_arrivals(record: Path, count: int) -> None:
    deadline = time.monotonic() + 30
    while len(record.read_text().splitlines()) < count:
        assert time.monotonic() < deadline, "the send did not get going"
        time.sleep(0.05)


def _start_send(project: Path, sink: tuple[int, Path]) -> subprocess.Popen[str]:
    """A real `kzmail send` to the slow sink, returned once two messages have arrived."""
    port, record = sink
    _point_at(project, port)
    send = subprocess.Popen(
        [str(KZMAIL), "send", CAMPAIGN, "--yes"], cwd=project, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    _wait_for_arrivals(record, 2)
    return send


def test_messages_in_flight_are_sending_not_uncertain(
    project: Path, slow_sink: tuple[int, Path]
) -> None:
    send = _start_send(project, slow_sink)
    try:
        counts, text = _status(project)
        assert counts["uncertain"] == 0, text
        assert counts["sending"] >= 1, text
        assert f"a send of this campaign is running (process {send.pid})" in text
        assert "uncertain:" not in text
        assert "in flight:" in text
    finally:
        (project / "release").touch()
        _, err = send.communicate(timeout=60)
    assert send.returncode == 0, err
    counts, text = _status(project)
    assert (counts["sent"], counts["sending"], counts["uncertain"]) == (12, 0, 0), text


def test_after_a_crash_the_rows_left_sending_are_uncertain(
    project: Path, slow_sink: tuple[int, Path]
) -> None:
    send = _start_send(project, slow_sink)
    os.kill(send.pid, signal.SIGKILL)
    send.communicate(timeout=10)
    counts, text = _status(project)
    assert counts["sending"] == 0, text
    assert counts["uncertain"] >= 1, text
    assert "uncertain:" in text and "in flight:" not in text

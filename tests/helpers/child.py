"""Run a command as a child process and report what the kernel measured of it alone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

# The command is started by this small launcher, not by the test process itself: a process
# created by fork (or vfork) and then exec'd starts its peak RSS from its parent's, so a
# test process holding 400 MB would make every child look that big.
_LAUNCHER = """
import json, os, subprocess, sys
report, args = sys.argv[1], sys.argv[2:]
process = subprocess.Popen(args)
_, status, usage = os.wait4(process.pid, 0)
with open(report, "w") as out:
    json.dump({"status": status, "peak_kb": usage.ru_maxrss}, out)
"""


@dataclass(frozen=True)
class ChildRun:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    peak_rss_mb: float
    killed: bool


def run_measured(args: list[str], cwd: Path, timeout: float = 60) -> ChildRun:
    """Run `args`, killed after `timeout` s; its peak RSS comes from wait4, for it alone."""
    with (
        tempfile.TemporaryFile("w+") as out,
        tempfile.TemporaryFile("w+") as err,
        tempfile.TemporaryDirectory() as folder,
    ):
        report = Path(folder) / "report.json"
        start = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, str(report), *args],
            cwd=cwd,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        killed = threading.Event()

        def kill() -> None:
            killed.set()
            os.killpg(process.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            process.wait()
        finally:
            timer.cancel()
        seconds = time.monotonic() - start
        measured = json.loads(report.read_text()) if report.exists() else None
        returncode = (
            os.waitstatus_to_exitcode(measured["status"]) if measured else process.returncode
        )
        out.seek(0)
        err.seek(0)
        return ChildRun(
            returncode,
            out.read(),
            err.read(),
            seconds,
            measured["peak_kb"] / 1024 if measured else float("inf"),
            killed.is_set(),
        )

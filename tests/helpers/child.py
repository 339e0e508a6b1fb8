"""Run a command as a child process and report what the kernel measured of it alone."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path


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
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.monotonic()
        process = subprocess.Popen(args, cwd=cwd, stdout=out, stderr=err,
                                   stdin=subprocess.DEVNULL, text=True)
        killed = threading.Event()

        def kill() -> None:
            killed.set()
            os.kill(process.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            timer.cancel()
        seconds = time.monotonic() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return ChildRun(process.returncode, out.read(), err.read(), seconds,
                        usage.ru_maxrss / 1024, killed.is_set())

"""The unsubscribe service against idle, dribbling, vanishing and double-framed clients.

Real servers on loopback, real sockets: a one-click POST must be answered and recorded
while hundreds of connections sit open doing nothing useful.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest

from kzmail.cli.common import current_workspace
from kzmail.services import unsubscribe as service_unsubscribe
from kzmail.web.server import raise_file_limit
from tests.helpers.campaigns import REPO
from tests.helpers.unsubscribe import ADDRESS, LIST, path_for, suppressions
from tests.helpers.web import running

HOSTILE = 300  # idle sockets, and as many slow-header ones
ONE_CLICK = b"List-Unsubscribe=One-Click"
FORM = {"content-type": "application/x-www-form-urlencoded"}
SLOW_HEAD = b"POST / HTTP/1.1\r\nHost: x\r\n"
DRIBBLE = b"X-Slow: aaaaaaaa\r\n"  # header lines that never end the head
KZMAIL = Path(sys.executable).with_name("kzmail")


def port_of(base: str) -> int:
    return int(base.rsplit(":", 1)[1])


def one_click(base: str, address: str = ADDRESS) -> tuple[int, float]:
    """Status and seconds taken of an RFC 8058 one-click POST on a fresh connection."""
    start = time.perf_counter()
    with httpx.Client(base_url=base, timeout=10) as http:
        response = http.post(path_for(LIST, address), content=ONE_CLICK, headers=FORM)
    return response.status_code, time.perf_counter() - start


def server_closed(sock: socket.socket, within: float = 0.0) -> bool:
    """Whether the server has closed this connection (waiting up to `within` seconds)."""
    if within:
        sock.settimeout(within)
    else:
        sock.setblocking(False)
    try:
        while sock.recv(4096):
            pass  # whatever it said before hanging up
        return True
    except (BlockingIOError, TimeoutError):
        return False
    except ConnectionError:  # reset: dropped
        return True
    finally:
        sock.settimeout(10)


class Dribbler:
    """Sends one header byte to each of its sockets every `every` seconds, in a thread."""

    def __init__(self, socks: list[socket.socket], every: float) -> None:
        self.socks = socks
        self.every = every
        self.rounds = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            byte = DRIBBLE[self.rounds % len(DRIBBLE) :][:1]
            for sock in self.socks:
                with contextlib.suppress(OSError):  # closed by the server: no more to send
                    sock.send(byte)
            self.rounds += 1

    def __enter__(self) -> Dribbler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def wait_rounds(self, count: int) -> None:
        deadline = time.monotonic() + 10 + count * self.every
        start = self.rounds
        while self.rounds < start + count:
            assert time.monotonic() < deadline, "the dribbler stalled"
            time.sleep(0.05)


@contextmanager
def hostile(
    port: int, idle: int, slow: int
) -> Iterator[tuple[list[socket.socket], list[socket.socket]]]:
    """`idle` connections that send nothing and `slow` ones that begin a request head."""
    with ExitStack() as stack:

        def connect() -> socket.socket:
            return stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=10))

        idle_socks = [connect() for _ in range(idle)]
        slow_socks = [connect() for _ in range(slow)]
        for sock in slow_socks:
            sock.sendall(SLOW_HEAD)
        yield idle_socks, slow_socks


def test_one_click_is_answered_while_600_hostile_connections_are_held_open(project: Path) -> None:
    application, _ = service_unsubscribe.build_app(current_workspace(), [])
    with running(application, deadline=60) as base:  # no one is dropped for lateness here
        assert one_click(base, "baseline@example.org")[0] == 200  # opens the state db
        baseline_status, baseline = one_click(base, "baseline@example.org")  # a replay
        assert baseline_status == 200
        with (
            hostile(port_of(base), HOSTILE, HOSTILE) as (idle, slow),
            Dribbler(slow, every=0.5) as dribbler,
        ):
            dribbler.wait_rounds(2)  # by now the server has taken every connection
            status, loaded = one_click(base)
            assert status == 200
            assert not any(server_closed(sock) for sock in idle + slow)  # all still held
        print(
            f"\none-click POST: {baseline * 1000:.1f} ms alone, {loaded * 1000:.1f} ms "
            f"with {2 * HOSTILE} hostile connections open"
        )
    assert {(r[0], r[1], r[2]) for r in suppressions()} == {
        (LIST, "baseline@example.org", "unsubscribe: one-click"),
        (LIST, ADDRESS, "unsubscribe: one-click"),
    }


def test_when_too_many_wait_the_longest_waiting_make_room(project: Path) -> None:
    application, _ = service_unsubscribe.build_app(current_workspace(), [])
    with (
        running(application, deadline=60, max_waiting=100) as base,
        hostile(port_of(base), HOSTILE, 0) as (idle, _none),
    ):
        status, _seconds = one_click(base)
        assert status == 200
        assert server_closed(idle[0], within=5)  # the oldest were dropped
        assert server_closed(idle[HOSTILE - 101], within=5)
        assert not server_closed(idle[-1])  # the newest still wait
    assert [(r[0], r[1]) for r in suppressions()] == [(LIST, ADDRESS)]


def test_every_connection_has_a_deadline_for_its_whole_request(project: Path) -> None:
    application, _ = service_unsubscribe.build_app(current_workspace(), [])
    head = (
        f"POST {path_for()} HTTP/1.1\r\nHost: x\r\nContent-Type: "
        "application/x-www-form-urlencoded\r\nContent-Length: 26\r\n\r\n"
    ).encode()
    with running(application, deadline=1) as base, hostile(port_of(base), 1, 1) as (idle, slow):
        slow_body = socket.create_connection(("127.0.0.1", port_of(base)), timeout=10)
        with slow_body, Dribbler(slow, every=0.2) as dribbler:
            slow_body.sendall(head)
            for byte in ONE_CLICK[:-1]:  # never the last byte
                if server_closed(slow_body, within=0.2):
                    break
                slow_body.send(bytes([byte]))
            assert server_closed(slow_body, within=5)
            assert server_closed(slow[0], within=5)  # dribbling does not buy time
            assert server_closed(idle[0], within=5)
            assert dribbler.rounds >= 2  # it really kept sending
        assert one_click(base)[0] == 200  # and the server still serves
    assert [(r[0], r[1]) for r in suppressions()] == [(LIST, ADDRESS)]


def raw(port: int, data: bytes) -> tuple[bytes, bool]:
    """What the server answers to `data`, and whether it then closed the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            return b"".join(chunks), False
        except ConnectionError:
            pass
        return b"".join(chunks), True


@pytest.mark.parametrize(
    "framing",
    [
        b"Content-Length: 26\r\nTransfer-Encoding: chunked\r\n",
        b"transfer-encoding: chunked\r\ncontent-length: 0\r\n",
        b"Content-Length: 31\r\nTransfer-Encoding: CHUNKED\r\n",
    ],
)
def test_content_length_with_transfer_encoding_is_refused(project: Path, framing: bytes) -> None:
    application, _ = service_unsubscribe.build_app(current_workspace(), [])
    request = (
        b"POST " + path_for().encode() + b" HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n" + framing + b"\r\n"
        b"1a\r\n" + ONE_CLICK + b"\r\n0\r\n\r\n"
    )
    with running(application) as base:
        answer, closed = raw(port_of(base), request)
        assert answer.startswith(b"HTTP/1.1 400 "), answer[:60]
        assert closed  # nothing after it is read as a request
        assert one_click(base, "other@example.org")[0] == 200
    assert [(r[0], r[1]) for r in suppressions()] == [(LIST, "other@example.org")]


def test_a_client_gone_mid_body_leaves_no_traceback(project: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(REPO / "src"), str(REPO), os.environ.get("PYTHONPATH", "")]
        ),
    }
    process = subprocess.Popen(
        [str(KZMAIL), "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        match = re.search(r"http://127\.0\.0\.1:(\d+)", process.stdout.readline())
        assert match
        port = int(match.group(1))
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(
                    b"POST " + path_for().encode() + b" HTTP/1.1\r\nHost: x\r\n"
                    b"Content-Type: application/x-www-form-urlencoded\r\n"
                    b"Content-Length: 26\r\n\r\nList-Unsub"
                )
                time.sleep(0.1)  # the route is waiting for the rest
        for _ in range(3):
            assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).text == "ok\n"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            _, stderr = process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate(timeout=5)
    assert "Traceback" not in stderr, stderr
    assert "ClientDisconnect" not in stderr
    assert suppressions() == []


def test_the_server_raises_its_open_file_limit_to_the_hard_one() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        assert raise_file_limit() >= min(soft, 1 << 20)
        return
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, hard // 2), hard))
    try:
        assert raise_file_limit() == hard
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

"""Run a web app on a socket: bind it, and serve it with uvicorn against slow clients.

The server gives every connection a deadline for sending one complete request and drops
the connection that has waited longest when too many wait, so idle or dribbling sockets
cannot crowd out a real one-click POST; requests framed two ways are refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import socket

import h11
import uvicorn
from starlette.requests import ClientDisconnect
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from kzmail.errors import ListenError

REQUEST_DEADLINE = 10.0  # seconds a connection has for one complete request (head and body)


MAX_WAITING = 1024  # connections waiting for their request before the oldest is dropped


class WaitingRoom:
    """The connections of one server still waiting for a complete request, oldest first."""

    def __init__(self, deadline: float, capacity: int) -> None:
        self.deadline = deadline
        self.capacity = capacity
        self.queue: dict[GuardedH11Protocol, None] = {}  # dicts keep insertion order


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, but a connection is dropped when it has not sent a complete
    request within `room.deadline` seconds of connecting (or of its last response), and
    when `room.capacity` connections are waiting, a new one drops the longest-waiting.

    uvicorn alone waits forever for headers that never end, and with a concurrency limit
    a few hundred such sockets turn every real request into a 503.
    """

    room: WaitingRoom  # set per server by `guarded_protocol`
    _timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_waiting()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state not in (h11.IDLE, h11.SEND_BODY):
            self._stop_waiting()  # the request is complete (or refused and closing)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state in (h11.IDLE, h11.SEND_BODY):
            self._start_waiting()  # keep-alive: the next request gets a deadline too

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        super().connection_lost(exc)

    def _start_waiting(self) -> None:
        room = self.room
        while len(room.queue) >= room.capacity:
            next(iter(room.queue)).drop()
        room.queue[self] = None
        self._timer = self.loop.call_later(room.deadline, self.drop)

    def _stop_waiting(self) -> None:
        self.room.queue.pop(self, None)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def drop(self) -> None:
        """Cut the connection at once (no response: its request never came)."""
        self._stop_waiting()
        self.transport.abort()


def guarded_protocol(deadline: float, capacity: int) -> type[GuardedH11Protocol]:
    """A `GuardedH11Protocol` class with a waiting room of its own (one per server)."""

    class Protocol(GuardedH11Protocol):
        room = WaitingRoom(deadline, capacity)

    return Protocol


class HttpGuard:
    """ASGI middleware around a whole app: refuses requests that carry both Content-Length
    and Transfer-Encoding (a proxy and we could disagree where the body ends: request
    smuggling), and swallows a client's disconnect that no route caught, which uvicorn
    would print as a long traceback."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            names = {name for name, _ in scope["headers"]}
            if b"content-length" in names and b"transfer-encoding" in names:
                refusal = PlainTextResponse(
                    "Bad request: both Content-Length and Transfer-Encoding.\n",
                    400,
                    headers={"connection": "close", "x-content-type-options": "nosniff"},
                )
                await refusal(scope, receive, send)
                return
        with contextlib.suppress(ClientDisconnect):  # nobody is left to answer
            await self.app(scope, receive, send)


def raise_file_limit() -> int:
    """Raise the soft limit on open files to the hard one; the soft limit now in force.

    The default soft limit (often 1,024) is used up by a few hundred held-open sockets.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def bind(host: str, port: int) -> socket.socket:
    """A listening socket; a clear error if the port is taken or the host unknown."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must say TCP: asyncio sets TCP_NODELAY only then, and without it every
    # response waits ~40 ms for the client's delayed ACK
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(socket.SOMAXCONN)
    except OSError as exc:
        sock.close()
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sock


def make_server(
    application: ASGIApp,
    sock: socket.socket,
    *,
    deadline: float = REQUEST_DEADLINE,
    max_waiting: int = MAX_WAITING,
) -> uvicorn.Server:
    """A uvicorn server for `application` on an already bound socket.

    Each connection has `deadline` seconds to send a complete request; at most
    `max_waiting` connections (fewer if open files are short) wait for theirs, and a new
    one drops the longest-waiting. There is no concurrency limit: uvicorn's counts idle
    connections too, and answered 503 to everyone once a few hundred sockets sat open.
    """
    files = raise_file_limit()
    capacity = max(16, min(max_waiting, (files - 128) // 2))  # half the files for the rest
    config = uvicorn.Config(
        HttpGuard(application),
        log_level="warning",
        http=guarded_protocol(deadline, capacity),
        ws="none",
        access_log=False,  # access logs would hold every token
        server_header=False,
        proxy_headers=False,
        lifespan="off",
        limit_concurrency=None,
        timeout_keep_alive=5,
        backlog=socket.SOMAXCONN,
        h11_max_incomplete_event_size=16 * 1024,
    )
    return uvicorn.Server(config)

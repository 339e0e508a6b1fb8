"""What kzmail's small web pages share: security headers, bounded bodies, forms, a page shell.

Pages are plain HTML with one inline stylesheet allowed by its CSP hash (so they work
under any path prefix a reverse proxy adds), no scripts unless a page says so, and no
third-party assets. Request bodies are read only up to a limit, and forms are parsed
with the standard library (urlencoded and multipart/form-data).

The server gives every connection a deadline for sending one complete request and drops
the connection that has waited longest when too many wait, so idle or dribbling sockets
cannot crowd out a real one-click POST; requests framed two ways are refused.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import resource
import socket
from email import policy
from email.parser import BytesParser
from urllib.parse import parse_qs

import h11
import uvicorn
from markupsafe import Markup, escape
from starlette.datastructures import MutableHeaders
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from kzmail.errors import BodyTooLarge, ClientGone, ListenError

STYLE = """
:root { color-scheme: light; }
body { margin: 0; background: #f2efeb; color: #1a1a1a;
  font: 17px/1.55 -apple-system, BlinkMacSystemFont, "Segoe UI", Helvetica, Arial, sans-serif; }
main { max-width: 34rem; margin: 2rem auto; padding: 1.5rem; background: #fff;
  border-top: 6px solid #8b0000; }
h1 { font-size: 1.5rem; line-height: 1.25; margin: 0 0 1rem; }
p { margin: 0 0 1rem; overflow-wrap: anywhere; }
button { font: inherit; font-weight: bold; color: #fff; background: #8b0000; border: 0;
  border-radius: 4px; padding: .75rem 1.5rem; cursor: pointer; min-height: 44px; }
button:hover { background: #6d0000; }
button:focus-visible, a:focus-visible, select:focus-visible { outline: 3px solid #1a1a1a;
  outline-offset: 3px; }
a { color: #8b0000; }
.note { color: #4a4a4a; font-size: .95rem; }
"""


def style_hash(css: str) -> str:
    """The CSP source that allows exactly this inline `<style>` content."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(css.encode()).digest()).decode() + "'"


STYLE_HASH = style_hash(STYLE)

PAGE_CSP = (f"default-src 'none'; style-src {STYLE_HASH}; img-src 'self'; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}


class SecurityHeaders:
    """ASGI middleware: every response gets the security headers (and a default CSP)."""

    def __init__(self, app: ASGIApp, csp: str = PAGE_CSP, *, cache: str | None = None) -> None:
        self.app = app
        self.headers = {**SECURITY_HEADERS, "content-security-policy": csp}
        if cache is not None:
            self.headers["cache-control"] = cache

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    headers.setdefault(name, value)   # a route may set its own CSP
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def read_body(request: Request, limit: int, drain: int = 64 * 1024) -> bytes:
    """The whole request body, or `BodyTooLarge` once it passes `limit` bytes.

    A modest excess (up to `drain` bytes) is read and dropped first, so the client gets
    to see the 413 page instead of a connection reset; anything bigger is cut off.
    `ClientGone` if the connection ends before the body does.
    """
    declared = request.headers.get("content-length")
    if declared is not None and not declared.isdigit():
        raise BodyTooLarge
    if declared is not None and int(declared) > limit + drain:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit + drain:
                raise BodyTooLarge
            if size <= limit:
                chunks.append(chunk)
    except ClientDisconnect:
        raise ClientGone from None
    if size > limit:
        raise BodyTooLarge
    return b"".join(chunks)


def parse_form(content_type: str, body: bytes, max_fields: int = 20) -> dict[str, str] | None:
    """Fields of an urlencoded or multipart/form-data body; None if it is malformed."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "application/x-www-form-urlencoded":
        try:
            parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True,
                              max_num_fields=max_fields)
        except (UnicodeDecodeError, ValueError):
            return None
        return {name: values[0] for name, values in parsed.items()}
    if kind == "multipart/form-data":
        return _parse_multipart(content_type, body, max_fields)
    return None


def _parse_multipart(content_type: str, body: bytes, max_fields: int) -> dict[str, str] | None:
    head = b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n"
    message = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    if not message.is_multipart() or message.defects:
        return None
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if part.defects or not isinstance(name, str) or not isinstance(payload, bytes):
            return None
        try:
            fields.setdefault(name, payload.decode("utf-8"))
        except UnicodeDecodeError:
            return None
        if len(fields) > max_fields:
            return None
    return fields


def page(language: str, title: str, body: Markup | str, status: int = 200, *,
         headers: dict[str, str] | None = None) -> HTMLResponse:
    """A small, complete HTML page; `body` is escaped unless it is `Markup`."""
    html = (
        "<!doctype html>\n"
        f'<html lang="{escape(language)}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex, nofollow">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>\n"
        f"<body><main>\n<h1>{escape(title)}</h1>\n{escape(body)}\n</main></body></html>\n"
    )
    return HTMLResponse(html, status_code=status, headers=headers)


REQUEST_DEADLINE = 10.0   # seconds a connection has for one complete request (head and body)
MAX_WAITING = 1024        # connections waiting for their request before the oldest is dropped


class WaitingRoom:
    """The connections of one server still waiting for a complete request, oldest first."""

    def __init__(self, deadline: float, capacity: int) -> None:
        self.deadline = deadline
        self.capacity = capacity
        self.queue: dict[GuardedH11Protocol, None] = {}   # dicts keep insertion order


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, but a connection is dropped when it has not sent a complete
    request within `room.deadline` seconds of connecting (or of its last response), and
    when `room.capacity` connections are waiting, a new one drops the longest-waiting.

    uvicorn alone waits forever for headers that never end, and with a concurrency limit
    a few hundred such sockets turn every real request into a 503.
    """

    room: WaitingRoom                     # set per server by `guarded_protocol`
    _timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_waiting()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state not in (h11.IDLE, h11.SEND_BODY):
            self._stop_waiting()          # the request is complete (or refused and closing)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state in (h11.IDLE,
                                                                         h11.SEND_BODY):
            self._start_waiting()         # keep-alive: the next request gets a deadline too

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
                    "Bad request: both Content-Length and Transfer-Encoding.\n", 400,
                    headers={"connection": "close", "x-content-type-options": "nosniff"})
                await refusal(scope, receive, send)
                return
        with contextlib.suppress(ClientDisconnect):     # nobody is left to answer
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


def make_server(application: ASGIApp, sock: socket.socket, *,
                deadline: float = REQUEST_DEADLINE,
                max_waiting: int = MAX_WAITING) -> uvicorn.Server:
    """A uvicorn server for `application` on an already bound socket.

    Each connection has `deadline` seconds to send a complete request; at most
    `max_waiting` connections (fewer if open files are short) wait for theirs, and a new
    one drops the longest-waiting. There is no concurrency limit: uvicorn's counts idle
    connections too, and answered 503 to everyone once a few hundred sockets sat open.
    """
    files = raise_file_limit()
    capacity = max(16, min(max_waiting, (files - 128) // 2))   # half the files for the rest
    config = uvicorn.Config(HttpGuard(application), log_level="warning",
                            http=guarded_protocol(deadline, capacity), ws="none",
                            access_log=False,          # access logs would hold every token
                            server_header=False, proxy_headers=False, lifespan="off",
                            limit_concurrency=None, timeout_keep_alive=5,
                            backlog=socket.SOMAXCONN,
                            h11_max_incomplete_event_size=16 * 1024)
    return uvicorn.Server(config)

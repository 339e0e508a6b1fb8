"""Run an ASGI app in a real uvicorn server on a free loopback port, in a thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from starlette.types import ASGIApp

from kzmail.web.server import bind, make_server


@contextmanager
def running(app: ASGIApp, **options: Any) -> Iterator[str]:
    """Yield the server's base URL (`http://127.0.0.1:<port>`) while it runs.

    `options` go to `make_server` (e.g. a short `deadline`).
    """
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    srv = make_server(app, sock, **options)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(10)
        sock.close()

"""A TCP proxy on loopback that cuts the connection after so many bytes from the server.

It forwards the TLS stream untouched (the client still talks TLS to the real server), so
the client sees what a dropped line looks like: the socket closes in the middle of a reply.
"""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager


def _pump(client: socket.socket, server: socket.socket, limit: int) -> None:
    passed = 0
    try:
        while True:
            ready, _, _ = select.select([client, server], [], [], 30)
            if not ready:
                return
            for sock in ready:
                data = sock.recv(65536)
                if not data:
                    return
                if sock is server:
                    data = data[: max(limit - passed, 0)]
                    passed += len(data)
                    if data:
                        client.sendall(data)
                    if passed >= limit:
                        return  # the line drops here, in the middle of a reply
                else:
                    server.sendall(data)
    except OSError:
        return
    finally:
        for sock in (client, server):
            sock.close()


@contextmanager
def cutting_proxy(port: int, limit: int) -> Iterator[int]:
    """Forward one loopback port to `port`; each connection is cut after `limit` bytes
    from the server. Yields the proxy's port."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", port))
            threading.Thread(target=_pump, args=(client, server, limit), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(5)
        listener.close()

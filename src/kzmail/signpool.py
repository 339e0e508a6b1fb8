"""DKIM private-key operations in worker processes, so the event loop never waits for one.

An RSA-2048 signature costs about half a millisecond of CPU; made on the event loop it
halves the send rate. A thread does not help: the loop keeps the GIL busy and the signing
thread waits for it. `SignPool` starts `workers` long-lived processes (`signworker`, run by
`sys.executable`), hands each the key once over its stdin, then pipelines requests to the
least busy one: a digest goes in, a signature comes back (framing in `signworker`). Replies
resolve their futures straight from the pipe protocol, without a reader task.

A worker that dies fails every pending and every later request with `SigningError`: the
messages concerned have not been sent, and nothing waits forever. `close` (also in
`async with`) closes the workers' stdin, waits for them to exit, kills them after a timeout
and reaps them, so no process is left behind.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from types import TracebackType

from cryptography.hazmat.primitives import serialization

from . import signworker
from .errors import SigningError
from .signworker import HELLO, REPLY, REQUEST, Key

WORKER = Path(signworker.__file__)
_STDERR_KEPT = 2000


class _Worker(asyncio.SubprocessProtocol):
    """One signing process: its pipes, and the futures of the requests it has not answered."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._buffer = bytearray()
        self._stderr = bytearray()
        self._sequence = 0
        self.pending: dict[int, asyncio.Future[bytes]] = {}
        self.ready: asyncio.Future[None] = loop.create_future()
        self.exited: asyncio.Future[None] = loop.create_future()
        self.transport: asyncio.SubprocessTransport | None = None
        self.stdin: asyncio.WriteTransport | None = None
        self.failure: str | None = None

    # asyncio callbacks ----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.SubprocessTransport)
        self.transport = transport
        stdin = transport.get_pipe_transport(0)
        assert isinstance(stdin, asyncio.WriteTransport)
        self.stdin = stdin

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if fd == 2:
            self._stderr += data
            del self._stderr[:-_STDERR_KEPT]
            return
        buffer = self._buffer
        buffer += data
        if not self.ready.done():
            if len(buffer) < len(HELLO):
                return
            if buffer[:len(HELLO)] != HELLO:
                self._fail("answered with something unexpected")
                return
            del buffer[:len(HELLO)]
            self.ready.set_result(None)
        start, size = 0, len(buffer)
        while size - start >= REPLY.size:
            sequence, length = REPLY.unpack_from(buffer, start)
            end = start + REPLY.size + length
            if end > size:
                break
            future = self.pending.pop(sequence, None)
            if future is not None and not future.done():   # done: its sender was cancelled
                future.set_result(bytes(buffer[start + REPLY.size:end]))
            start = end
        del buffer[:start]

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd == 1:     # EOF on stdout: every reply the worker made has been read
            self._fail("ended unexpectedly")

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)

    # requests -------------------------------------------------------------------------
    def request(self, digest: bytes) -> asyncio.Future[bytes]:
        if self.failure is not None:
            raise SigningError(self.failure)
        assert self.stdin is not None
        self._sequence = sequence = (self._sequence + 1) & 0xFFFFFFFF
        future: asyncio.Future[bytes] = self._loop.create_future()
        self.pending[sequence] = future
        self.stdin.write(REQUEST.pack(sequence, digest))
        return future

    def _fail(self, what: str) -> None:
        if self.failure is None:
            pid = self.transport.get_pid() if self.transport is not None else "?"
            said = self._stderr.decode("utf-8", "replace").strip().splitlines()
            self.failure = (f"the DKIM signing process (pid {pid}) {what}"
                            + (f": {said[-1]}" if said else "")
                            + "; messages waiting for a signature were not sent")
        for future in self.pending.values():
            if not future.done():
                future.set_exception(SigningError(self.failure))
        self.pending.clear()
        if not self.ready.done():
            self.ready.set_exception(SigningError(self.failure))

    def closing(self) -> None:
        """From now on a lost pipe is our doing, not a failure to report."""
        if self.failure is None:
            self.failure = "the DKIM signing process was closed"
        if not self.ready.done():
            self.ready.cancel()


class SignPool:
    """Worker processes that sign digests for one key; `async with` or `start()`/`close()`."""

    def __init__(self, key: Key, *, workers: int = 1, start_timeout: float = 30.0,
                 stop_timeout: float = 5.0) -> None:
        if workers < 1:
            raise ValueError("a SignPool needs at least one worker")
        self._key = key
        self._size = workers
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._workers: list[_Worker] = []

    async def __aenter__(self) -> SignPool:
        await self.start()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    @property
    def pids(self) -> list[int]:
        """The workers' process ids (for tests and diagnostics)."""
        return [w.transport.get_pid() for w in self._workers if w.transport is not None]

    async def start(self) -> None:
        """Start the workers and wait until each has loaded the key."""
        if self._workers:
            return
        loop = asyncio.get_running_loop()
        pem = self._key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())
        try:
            for _ in range(self._size):
                # -P: the script's folder (this package) must not shadow the standard library
                _, worker = await loop.subprocess_exec(
                    lambda: _Worker(loop), sys.executable, "-P", str(WORKER),
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                self._workers.append(worker)
                assert worker.stdin is not None
                worker.stdin.write(len(pem).to_bytes(4, "big") + pem)
            await asyncio.wait_for(asyncio.gather(*(w.ready for w in self._workers)),
                                   self._start_timeout)
        except OSError as exc:
            await self.close()
            raise SigningError(f"cannot start the DKIM signing process: {exc}") from None
        except TimeoutError:
            await self.close()
            raise SigningError("the DKIM signing process did not start within "
                               f"{self._start_timeout:g} s") from None
        except BaseException:
            await self.close()
            raise

    async def sign(self, digest: bytes) -> bytes:
        """The signature for `digest` (see `signworker.sign_digest`), made by a worker."""
        workers = self._workers
        if not workers:
            raise SigningError("the DKIM signing pool is not running")
        for worker in workers:      # one dead worker stops the pool: something is wrong
            if worker.failure is not None:
                raise SigningError(worker.failure)
        worker = workers[0] if len(workers) == 1 else min(workers, key=lambda w: len(w.pending))
        return await worker.request(digest)

    async def close(self) -> None:
        """End every worker: EOF on stdin, then a kill after `stop_timeout`; reap them all."""
        workers, self._workers = self._workers, []
        try:
            for worker in workers:
                worker.closing()
                if worker.stdin is not None:
                    worker.stdin.close()
            exits = asyncio.gather(*(w.exited for w in workers))
            try:
                await asyncio.wait_for(asyncio.shield(exits), self._stop_timeout)
            except TimeoutError:
                for worker in workers:
                    if worker.transport is not None and worker.transport.get_returncode() is None:
                        worker.transport.kill()
                await asyncio.wait([exits], timeout=self._stop_timeout)
        finally:
            for worker in workers:
                if worker.transport is not None:
                    worker.transport.close()   # kills it if it still runs; the loop reaps it

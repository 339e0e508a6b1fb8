"""DKIM private-key operations in worker processes, so the event loop never waits for one.

A private-key signature made on the event loop would stall sending, and a thread would
wait for the GIL the loop holds (see docs/decisions/0003-dkim-signing-process.md).
`SignPool` starts `workers` long-lived processes (`dkim.worker`, run by
`sys.executable`), hands each the key once over its stdin, then pipelines requests to the
least busy one: a digest goes in, a signature comes back (framing in `dkim.worker`). Replies
resolve their futures straight from the loop's reader callback, without a reader task.

A worker that dies fails every pending and every later request with `SigningError`: the
messages concerned have not been sent, and nothing waits forever. `close` (also in
`async with`) closes the workers' stdin, waits for them to exit, kills them after a timeout
and reaps them, so no process is left behind.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from types import TracebackType

from cryptography.hazmat.primitives import serialization

from kzmail.dkim.worker import HELLO, REPLY, REQUEST, Key
from kzmail.errors import SigningError

WORKER = Path(__file__).with_name("worker.py")  # run as a script: a fresh interpreter
_STDERR_KEPT = 2000


class _Worker:
    """One signing process: its pipes, and the futures of the requests it has not answered.

    The pipes are driven with `add_reader` and plain `os.read`/`os.write`: per message that
    is one write and one read, without the layers of asyncio's subprocess transport (which
    also allocates a 256 KiB buffer per read; docs/decisions/0003-dkim-signing-process.md).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, pem: bytes) -> None:
        self._loop = loop
        self._buffer = bytearray()
        self._unsent = bytearray()  # requests the full stdin pipe did not take yet
        self._sequence = 0
        self.pending: dict[int, asyncio.Future[bytes]] = {}
        self.ready: asyncio.Future[None] = loop.create_future()
        self.ended: asyncio.Future[None] = loop.create_future()  # EOF on its stdout
        self.failure: str | None = None
        # -P: the script's folder (this package) must not shadow the standard library
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and script
            [sys.executable, "-P", str(WORKER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self._stdin = self.process.stdin.fileno()
        self._stdout = self.process.stdout.fileno()
        try:
            os.write(self._stdin, len(pem).to_bytes(4, "big") + pem)  # a fresh pipe takes it
            os.set_blocking(self._stdin, False)
            os.set_blocking(self._stdout, False)
            loop.add_reader(self._stdout, self._readable)
        except BaseException:
            self.reap()  # nobody else knows about this process yet
            raise

    @property
    def pid(self) -> int:
        return self.process.pid

    # pipes ----------------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        if self._unsent:
            self._unsent += data
            return
        try:
            written = os.write(self._stdin, data)
        except BlockingIOError:
            written = 0
        except OSError:  # EPIPE: it died; its stdout EOF reports that
            return
        if written < len(data):
            self._unsent += data[written:]
            self._loop.add_writer(self._stdin, self._writable)

    def _writable(self) -> None:
        try:
            written = os.write(self._stdin, self._unsent)
        except BlockingIOError:
            return
        except OSError:
            written = len(self._unsent)
        del self._unsent[:written]
        if not self._unsent:
            self._loop.remove_writer(self._stdin)

    def _readable(self) -> None:
        try:
            data = os.read(self._stdout, 1 << 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # EOF: every reply the worker made has been read
            self._loop.remove_reader(self._stdout)
            self._fail("ended unexpectedly")
            if not self.ended.done():
                self.ended.set_result(None)
            return
        buffer = self._buffer
        buffer += data
        if not self.ready.done():
            if len(buffer) < len(HELLO):
                return
            if buffer[: len(HELLO)] != HELLO:
                self._fail("answered with something unexpected")
                return
            del buffer[: len(HELLO)]
            self.ready.set_result(None)
        start, size = 0, len(buffer)
        while size - start >= REPLY.size:
            sequence, length = REPLY.unpack_from(buffer, start)
            end = start + REPLY.size + length
            if end > size:
                break
            future = self.pending.pop(sequence, None)
            if future is not None and not future.done():  # done: its sender was cancelled
                future.set_result(bytes(buffer[start + REPLY.size : end]))
            start = end
        del buffer[:start]

    def _said(self) -> str:
        """The last line the worker wrote to stderr, if it has written one."""
        assert self.process.stderr is not None
        os.set_blocking(self.process.stderr.fileno(), False)
        try:
            said = os.read(self.process.stderr.fileno(), _STDERR_KEPT)
        except OSError:
            return ""
        lines = said.decode("utf-8", "replace").strip().splitlines()
        return lines[-1] if lines else ""

    # requests -------------------------------------------------------------------------
    def request(self, digest: bytes) -> asyncio.Future[bytes]:
        if self.failure is not None:
            raise SigningError(self.failure)
        self._sequence = sequence = (self._sequence + 1) & 0xFFFFFFFF
        future: asyncio.Future[bytes] = self._loop.create_future()
        self.pending[sequence] = future
        self._write(REQUEST.pack(sequence, digest))
        return future

    def _fail(self, what: str) -> None:
        if self.failure is None:
            said = self._said()
            self.failure = (
                f"the DKIM signing process (pid {self.pid}) {what}"
                + (f": {said}" if said else "")
                + "; messages waiting for a signature were not sent"
            )
        for future in self.pending.values():
            if not future.done():
                future.set_exception(SigningError(self.failure))
        self.pending.clear()
        if not self.ready.done():
            self.ready.set_exception(SigningError(self.failure))

    # the end --------------------------------------------------------------------------
    def close_stdin(self) -> None:
        """Ask it to exit (EOF); from now on a lost pipe is our doing, not a failure."""
        if self.failure is None:
            self.failure = "the DKIM signing process was closed"
        if not self.ready.done():
            self.ready.cancel()
        if self._unsent:
            self._loop.remove_writer(self._stdin)
            self._unsent.clear()
        assert self.process.stdin is not None
        self.process.stdin.close()

    def reap(self) -> None:
        """Kill it if it still runs, collect its exit status, close the pipes."""
        self._loop.remove_reader(self._stdout)
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()


class SignPool:
    """Worker processes that sign digests for one key; `async with` or `start()`/`close()`."""

    def __init__(
        self, key: Key, *, workers: int = 1, start_timeout: float = 30.0, stop_timeout: float = 5.0
    ) -> None:
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

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def pids(self) -> list[int]:
        """The workers' process ids (for tests and diagnostics)."""
        return [w.pid for w in self._workers]

    async def start(self) -> None:
        """Start the workers and wait until each has loaded the key."""
        if self._workers:
            return
        loop = asyncio.get_running_loop()
        pem = self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        try:
            for _ in range(self._size):
                self._workers.append(_Worker(loop, pem))
            await asyncio.wait_for(
                asyncio.gather(*(w.ready for w in self._workers)), self._start_timeout
            )
        except OSError as exc:
            await self.close()
            raise SigningError(f"cannot start the DKIM signing process: {exc}") from exc
        except TimeoutError:
            await self.close()
            raise SigningError(
                f"the DKIM signing process did not start within {self._start_timeout:g} s"
            ) from None
        except BaseException:
            await self.close()
            raise

    async def sign(self, digest: bytes) -> bytes:
        """The signature for `digest` (see `dkim.worker.sign_digest`), made by a worker."""
        workers = self._workers
        if not workers:
            raise SigningError("the DKIM signing pool is not running")
        for worker in workers:  # one dead worker stops the pool: something is wrong
            if worker.failure is not None:
                raise SigningError(worker.failure)
        worker = workers[0] if len(workers) == 1 else min(workers, key=lambda w: len(w.pending))
        return await worker.request(digest)

    async def close(self) -> None:
        """End every worker: EOF on stdin, then a kill after `stop_timeout`; reap them all."""
        workers, self._workers = self._workers, []
        try:
            for worker in workers:
                worker.close_stdin()
            if workers:
                # a worker's stdout ends when it exits
                ended = asyncio.gather(*(w.ended for w in workers))
                await asyncio.wait([ended], timeout=self._stop_timeout)
                ended.cancel()
        finally:
            for worker in workers:
                worker.reap()

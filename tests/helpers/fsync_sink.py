"""A separate-process SMTP server whose record survives the client's SIGKILL.

Run as `python fsync_sink.py RECORD_FILE [SECONDS [HOLD_AFTER RELEASE_FILE]]`: prints its port on
the first line of stdout,
then for every message appends `recipient<TAB>Message-ID<TAB>time` to RECORD_FILE and
fsyncs it *before* answering 250, so what it says it received is what it received.
Each DATA takes a few random milliseconds (or SECONDS), so a kill often lands
mid-transaction. With HOLD_AFTER, every DATA after the first HOLD_AFTER messages waits until
RELEASE_FILE exists, so a test can look at a send that is certainly mid-transaction.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import socket
import sys
import time

from aiosmtpd.smtp import SMTP, Envelope, Session

MESSAGE_ID = re.compile(rb"^Message-ID:\s*(<[^>]+>)", re.IGNORECASE | re.MULTILINE)


class FsyncHandler:
    def __init__(self, path: str, slow: float, hold_after: int = 0, release: str = "") -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.slow = slow
        self.hold_after = hold_after
        self.release = release
        self.started = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.started += 1
        if self.release and self.started > self.hold_after:
            while not os.path.exists(self.release):
                await asyncio.sleep(0.02)
        await asyncio.sleep(self.slow or random.uniform(0.002, 0.02))
        data = bytes(envelope.original_content or b"")
        match = MESSAGE_ID.search(data)
        mid = match.group(1).decode() if match else "-"
        for recipient in envelope.rcpt_tos:
            os.write(self.fd, f"{recipient}\t{mid}\t{time.time()}\n".encode())
        os.fsync(self.fd)
        return "250 2.0.0 OK stored"


async def main(path: str, slow: float, hold_after: int = 0, release: str = "") -> None:
    socket.getfqdn = lambda name="": "localhost"
    handler = FsyncHandler(path, slow, hold_after, release)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="fsync.localhost", decode_data=False),
        host="127.0.0.1",
        port=0,
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    hold = (int(sys.argv[3]), sys.argv[4]) if len(sys.argv) > 4 else (0, "")
    asyncio.run(main(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 0.0, *hold))

"""A separate-process SMTP server whose record survives the client's SIGKILL.

Run as `python fsync_sink.py RECORD_FILE [SECONDS]`: prints its port on the first line of stdout,
then for every message appends `recipient<TAB>Message-ID<TAB>time` to RECORD_FILE and
fsyncs it *before* answering 250, so what it says it received is what it received.
Each DATA takes a few random milliseconds (or SECONDS), so a kill often lands
mid-transaction.
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
    def __init__(self, path: str, slow: float) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.slow = slow

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        await asyncio.sleep(self.slow or random.uniform(0.002, 0.02))
        data = bytes(envelope.original_content or b"")
        match = MESSAGE_ID.search(data)
        mid = match.group(1).decode() if match else "-"
        for recipient in envelope.rcpt_tos:
            os.write(self.fd, f"{recipient}\t{mid}\t{time.time()}\n".encode())
        os.fsync(self.fd)
        return "250 2.0.0 OK stored"


async def main(path: str, slow: float) -> None:
    socket.getfqdn = lambda name="": "localhost"
    handler = FsyncHandler(path, slow)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="fsync.localhost", decode_data=False),
        host="127.0.0.1",
        port=0,
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 0.0))

"""A lean SMTP sink for benchmarks: raw asyncio protocol, minimal replies, counts messages.

Run as its own process (`python lean_sink.py`) so it does not share the sender's GIL:
it prints its port, then serves until stdin closes, then prints how many messages it
took. It accepts anything and stores nothing; it only finds the end of each DATA. It offers
PIPELINING, as every common relay does (Postfix, Exim, Gmail, SES): commands that arrive
together are answered in order.
"""

from __future__ import annotations

import asyncio
import sys


class LeanSmtp(asyncio.Protocol):
    count = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.t = transport
        self.buf = bytearray()
        self.in_data = False
        self.scanned = 0
        transport.write(b"220 lean ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        while True:
            if self.in_data:
                # the end marker may straddle two reads: search a little before the new bytes
                end = buf.find(b"\r\n.\r\n", max(0, self.scanned - 4))
                if end < 0 and buf.startswith(b".\r\n"):
                    end = -2  # an empty body: the lone dot
                if end < 0:
                    self.scanned = len(buf)
                    return
                del buf[: end + 5]
                self.in_data = False
                LeanSmtp.count += 1
                self.t.write(b"250 2.0.0 ok\r\n")
                continue
            nl = buf.find(b"\r\n")
            if nl < 0:
                return
            verb = bytes(buf[:4]).upper()
            del buf[: nl + 2]
            if verb == b"DATA":
                self.in_data = True
                self.scanned = 0
                self.t.write(b"354 go\r\n")
            elif verb == b"EHLO":
                self.t.write(
                    b"250-lean\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 100000000\r\n"
                )
            elif verb == b"QUIT":
                self.t.write(b"221 bye\r\n")
                self.t.close()
                return
            else:
                self.t.write(b"250 ok\r\n")


async def main() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(LeanSmtp, "127.0.0.1", 0, backlog=512)
    print(server.sockets[0].getsockname()[1], flush=True)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while await reader.readline():
        print(LeanSmtp.count, flush=True)  # any line on stdin: report the count so far
    server.close()


if __name__ == "__main__":
    asyncio.run(main())

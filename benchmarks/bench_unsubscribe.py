"""Unsubscribe service speed: requests per second of each kind against a real uvicorn server.

Baseline, measured in the same run: `GET /healthz` (the cheapest request the server
answers). Every other figure is printed as a ratio of its time per request to that.
Also: checking one token, against one bare HMAC-SHA256 of the same payload.
    python benchmarks/bench_unsubscribe.py [--quick]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from kzmail.cli.common import current_workspace

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from kzmail.services import unsubscribe as service_unsubscribe  # noqa: E402
from kzmail.state.secret import load_signer  # noqa: E402
from kzmail.tokens import TokenSigner  # noqa: E402
from kzmail.web import server as webserver  # noqa: E402

LIST = "kasachstan.newsletter.arbeiterinnenmacht.example.org"


def per_request(count: int, request: Callable[[int], object]) -> float:
    start = time.perf_counter()
    for i in range(count):
        request(i)
    return (time.perf_counter() - start) / count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    count = 100 if parser.parse_args().quick else 2000
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        for name in ("campaigns", "templates"):
            shutil.copytree(REPO / name, work / name)
        shutil.copy(REPO / "subscribers.example.csv", work)
        os.chdir(work)
        os.environ["KZMAIL_STATE_DIR"] = str(work / ".kzmail")
        application, _ = service_unsubscribe.build_app(current_workspace(), [])
        signer = load_signer(work / ".kzmail")
        sock = webserver.bind("127.0.0.1", 0)
        srv = webserver.make_server(application, sock)
        thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        while not srv.started:
            time.sleep(0.01)
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        form = {"content-type": "application/x-www-form-urlencoded"}
        with httpx.Client(base_url=base) as http:
            baseline = per_request(count, lambda i: http.get("/healthz"))
            rows = {
                "GET /u/<token> (page)": per_request(
                    count, lambda i: http.get(f"/u/{signer.make(LIST, f'p{i}@example.org')}")
                ),
                "POST one-click (new row)": per_request(
                    count,
                    lambda i: http.post(
                        f"/u/{signer.make(LIST, f'n{i}@example.org')}",
                        content=b"List-Unsubscribe=One-Click",
                        headers=form,
                    ),
                ),
                "POST one-click (replay)": per_request(
                    count,
                    lambda i: http.post(
                        f"/u/{signer.make(LIST, 'n0@example.org')}",
                        content=b"List-Unsubscribe=One-Click",
                        headers=form,
                    ),
                ),
                "forged token": per_request(count, lambda i: http.get(f"/u/AAAA{i}.BBBB")),
            }
        srv.should_exit = True
        thread.join(10)
    print(f"unsubscribe service, {count} requests each, one client over keep-alive")
    print(f"  baseline GET /healthz: {baseline * 1e3:.2f} ms/request ({1 / baseline:.0f}/s)")
    for name, seconds in rows.items():
        print(
            f"  {name:28s} {seconds * 1e3:6.2f} ms/request  "
            f"{seconds / baseline:5.2f}x baseline ({1 / seconds:.0f}/s)"
        )
    tokens = TokenSigner(b"k" * 32)
    token = tokens.make(LIST, "jane@example.org")
    payload = f"{LIST}\njane@example.org".encode()
    n = count * 50
    bare = per_request(n, lambda i: hmac.new(b"k" * 32, payload, hashlib.sha256).digest())
    check = per_request(n, lambda i: tokens.check(token))
    print(
        f"  token check: {check * 1e6:.2f} us, {check / bare:.1f}x one bare HMAC-SHA256 "
        f"({bare * 1e6:.2f} us)"
    )


if __name__ == "__main__":
    main()

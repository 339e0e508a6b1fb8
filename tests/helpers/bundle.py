"""A bundle-served unsubscribe server as a test runs it: its own process and folder."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import message_from_bytes, policy
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx

KZMAIL = Path(sys.executable).with_name("kzmail")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class BundleServer:
    url: str
    folder: Path
    log: Path  # stdout and stderr of the server process


@contextmanager
def bundle_server(folder: Path, port: int, workdir: Path) -> Iterator[BundleServer]:
    """`KZMAIL_STATE_DIR=folder kzmail serve` from an empty folder, until the block ends."""
    workdir.mkdir(exist_ok=True)
    log = workdir / "server.log"
    env = {k: v for k, v in os.environ.items() if k != "KZMAIL_STATE_DIR"}
    env["KZMAIL_STATE_DIR"] = str(folder)
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(KZMAIL), "serve", "--port", str(port)],
            cwd=workdir,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).text == "ok\n":
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(log.read_text(errors="replace"))
            time.sleep(0.1)
        yield BundleServer(url, folder, log)
    finally:
        process.terminate()
        process.wait(10)


def link_path(data: bytes) -> str:
    """The `/u/<token>` path of the https link in a message's List-Unsubscribe header."""
    message = message_from_bytes(data, policy=policy.default)
    header = str(message["List-Unsubscribe"])
    url = header.split("<", 1)[1].split(">", 1)[0]
    assert url.startswith("https://"), header
    return urlsplit(url).path


def encodings(address: str) -> set[bytes]:
    """Every form an address could leak in: as written, lowercase, local part alone,
    URL-encoded, and base64 (standard and URL-safe, at each of the three alignments)."""
    forms: set[bytes] = set()
    for text in {address, address.lower(), address.split("@")[0].lower()}:
        raw = text.encode()
        forms |= {raw, quote(text, safe="").encode(), quote(text).encode()}
        for shift in range(3):
            for encode in (base64.b64encode, base64.urlsafe_b64encode):
                coded = encode(b"\0" * shift + raw).rstrip(b"=")
                # drop the characters that also depend on the neighbouring bytes
                start = (shift * 8 + 5) // 6 + (1 if shift else 0)
                inner = coded[start : len(coded) - 2]
                if len(inner) >= 8:
                    forms.add(inner)
    return {f for f in forms if len(f) >= 4}


def leaks(paths: list[Path], addresses: list[str]) -> list[tuple[str, str]]:
    """(file, address) for every file under `paths` holding an address in any form."""
    found = []
    for root in paths:
        files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
        for file in files:
            data = file.read_bytes()
            for address in addresses:
                if any(form in data for form in encodings(address)):
                    found.append((str(file), address))
    return found

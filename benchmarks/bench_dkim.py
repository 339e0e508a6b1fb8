"""DKIM signing cost: messages built per second with and without a signature.

Builds the example campaign's messages through `workspace.prepare(ws, path).build` (what the engine
calls per subscriber) three ways: unsigned (the baseline, measured in the same run), signed
with RSA-2048 and signed with Ed25519, and prints each rate as a ratio of the baseline, plus
the time of `DkimSigner.sign` alone. The build-only ratio is the worst case: a real send
also spends time on SMTP, which signing does not slow down, and makes the private-key
operation in a signing process of its own. The target (signed sending >= 0.5x unsigned) is
therefore measured end to end, by `bench_send.py` (c'); this script only informs.
`--quick` runs a short smoke version.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from kzmail.cli.common import current_workspace
from kzmail.models import Subscriber
from kzmail.services import workspace

REPO = Path(__file__).resolve().parent.parent


def _project(root: Path, key: Path | None) -> Path:
    for name in ("campaigns", "templates"):
        shutil.copytree(REPO / name, root / name)
    shutil.copy(REPO / "subscribers.example.csv", root / "subscribers.example.csv")
    campaign = root / "campaigns" / "kasachstan.yaml"
    if key is not None:
        with campaign.open("a", encoding="utf-8") as out:
            out.write(f"\ndkim:\n  domain: example.org\n  selector: s\n  key_file: {key}\n")
    return campaign


def _batch(prepared: workspace.Prepared, people: list[Subscriber]) -> float:
    start = time.perf_counter()
    for person in people:
        prepared.build(person)
    return len(people) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    quick = parser.parse_args().quick
    batch, rounds = (50, 2) if quick else (200, 10)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        os.environ["KZMAIL_STATE_DIR"] = str(root / "state")
        keys: dict[str, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey] = {
            "rsa-2048": rsa.generate_private_key(public_exponent=65537, key_size=2048),
            "ed25519": ed25519.Ed25519PrivateKey.generate(),
        }
        prepared = {
            "unsigned": workspace.prepare(current_workspace(), _project(root / "unsigned", None))
        }
        for label, key in keys.items():
            path = root / f"{label}.pem"
            path.write_bytes(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
            prepared[label] = workspace.prepare(current_workspace(), _project(root / label, path))
    people = [Subscriber(f"reader{i}@example.org", f"Leserin Nr. {i}") for i in range(batch)]
    # Interleaved rounds, best of each: the machine is shared, so a slow moment must not
    # land on one variant only.
    rates = dict.fromkeys(prepared, 0.0)
    for _ in range(rounds):
        for label, item in prepared.items():
            rates[label] = max(rates[label], _batch(item, people))
    # The signing step alone, on the finished bytes of one message.
    data = prepared["unsigned"].build(people[0]).data
    sign_ms = {}
    for label in keys:
        signer = prepared[label].factory._signer
        assert signer is not None
        best = min(_time(signer.sign, data) for _ in range(rounds))
        sign_ms[label] = best * 1e3
    base = rates["unsigned"]
    print(
        f"bench_dkim: best of {rounds} interleaved batches of {batch} messages "
        f"({len(data) // 1000} kB each)"
    )
    for label, value in rates.items():
        extra = f"  sign() {sign_ms[label]:.2f} ms/message" if label in sign_ms else ""
        print(f"  {label:9} {value:8.0f} msg/s  {value / base:5.2f}x unsigned{extra}")
    print(
        "  (building and signing in one process, no SMTP: the worst case; the target is "
        "measured by bench_send.py (c'))"
    )


def _time(sign: Callable[[bytes], bytes], data: bytes, count: int = 50) -> float:
    start = time.perf_counter()
    for _ in range(count):
        sign(data)
    return (time.perf_counter() - start) / count


if __name__ == "__main__":
    main()

"""DKIM signing cost: messages built per second with and without a signature.

Builds the example campaign's messages through `app.prepare(...).build` (what the engine
calls per subscriber) three ways: unsigned (the baseline, measured in the same run), signed
with RSA-2048 and signed with Ed25519, and prints each rate as a ratio of the baseline.
Target: signed >= 0.5x unsigned. `--quick` runs a short smoke version.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from kzmail import app
from kzmail.models import Subscriber

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


def _rate(campaign: Path, count: int) -> float:
    prepared = app.prepare(campaign)
    people = [Subscriber(f"reader{i}@example.org", f"Leserin Nr. {i}") for i in range(count)]
    prepared.build(people[0])                       # warm-up
    start = time.perf_counter()
    for person in people:
        prepared.build(person)
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    count = 100 if parser.parse_args().quick else 2000
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        os.environ["KZMAIL_STATE_DIR"] = str(root / "state")
        keys: dict[str, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey] = {
            "rsa-2048": rsa.generate_private_key(public_exponent=65537, key_size=2048),
            "ed25519": ed25519.Ed25519PrivateKey.generate(),
        }
        rates: dict[str, float] = {}
        runs: list[tuple[str, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey | None]] = [
            ("unsigned", None), *keys.items()]
        for label, key in runs:
            path = None
            if key is not None:
                path = root / f"{label}.pem"
                path.write_bytes(key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption()))
            rates[label] = _rate(_project(root / label, path), count)
    base = rates["unsigned"]
    print(f"bench_dkim: {count} messages each")
    for label, value in rates.items():
        extra = (1 / value - 1 / base) * 1e3
        print(f"  {label:9} {value:8.0f} msg/s  {value / base:5.2f}x unsigned"
              + (f"  (+{extra:.2f} ms signing per message)" if label != "unsigned" else ""))
    worst = min(rates[label] for label in keys) / base
    if worst < 0.5:
        print(f"bench_dkim: signed rate {worst:.2f}x is below the 0.5x target", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()

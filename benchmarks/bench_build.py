"""Per-subscriber cost of building a message, against baselines measured in the same run.

    python benchmarks/bench_build.py [--quick] [--n N]

Compares, for the example campaign:
  naive     per subscriber: MJML compile + premailer + text part + EmailMessage (what a tool
            that renders the whole template for every person pays)
  email     per subscriber: Jinja render of the pre-compiled template + EmailMessage
  kzmail    per subscriber: `Prepared.build` (Jinja render + HMAC token + pre-folded headers)
and prints each as messages/s and as a ratio to kzmail.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

from kzmail.cli.common import current_workspace
from kzmail.models import Subscriber
from kzmail.render import template as render
from kzmail.services import workspace

REPO = Path(__file__).resolve().parent.parent


def _people(n: int) -> list[Subscriber]:
    return [Subscriber(f"person{i}@example.org", f"Persön {i}", {"city": "Köln"}) for i in range(n)]


def _rate(
    label: str, n: int, build: Callable[[Subscriber], object], people: list[Subscriber]
) -> float:
    start = time.perf_counter()
    for person in people[:n]:
        build(person)
    elapsed = time.perf_counter() - start
    rate = n / elapsed
    print(f"  {label:<8} {rate:10.0f} msg/s  {1e6 / rate:9.1f} µs/msg  ({n} messages)")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--n", type=int, default=None, help="messages for the fast paths")
    args = parser.parse_args()
    n = args.n or (300 if args.quick else 5000)
    naive_n = 5 if args.quick else 40

    os.environ.setdefault("KZMAIL_STATE_DIR", tempfile.mkdtemp(prefix="kzbench-"))
    start = time.perf_counter()
    prepared = workspace.prepare(current_workspace(), REPO / "campaigns/kasachstan.yaml")
    compile_ms = (time.perf_counter() - start) * 1000
    people = _people(n)
    campaign = prepared.campaign

    def email_message(person: Subscriber) -> bytes:
        parts, _ = prepared.render(person)
        msg = EmailMessage(policy=SMTP)
        msg["From"] = campaign.from_
        msg["To"] = f"{person.name} <{person.email}>"
        msg["Subject"] = campaign.subject
        msg["List-Id"] = f"<{campaign.list_id}>"
        msg.set_content(parts.text)
        msg.add_alternative(parts.html, subtype="html")
        return bytes(msg)

    def naive(person: Subscriber) -> bytes:
        render.compile_campaign(campaign)  # MJML + premailer + text part, every time
        return email_message(person)

    size = len(prepared.build(people[0]).data)
    print(
        f"kzmail build benchmark: example campaign, {size / 1024:.0f} KiB per message, "
        f"compile once: {compile_ms:.0f} ms"
    )
    kz = _rate("kzmail", n, prepared.build, people)
    em = _rate("email", n, email_message, people)
    nv = _rate("naive", naive_n, naive, people)
    print(
        f"ratios: kzmail is {kz / em:.1f}x the EmailMessage path and "
        f"{kz / nv:.0f}x the naive per-subscriber pipeline"
    )


if __name__ == "__main__":
    main()

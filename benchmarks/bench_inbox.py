"""`kzmail inbox` over a Maildir of bounces: messages/s and peak memory, streamed.

    python benchmarks/bench_inbox.py [--quick] [--n N]

Writes N bounces (default 10,000: RFC 3464 reports from several MTAs, hard, soft and
spam-block verdicts mixed, plus Exim and qmail plain-text ones) to a Maildir, then runs, each
in a fresh process so peak RSS is its own:
  parse     email.message_from_bytes per file (the least any reader pays)
  flufl     parse + flufl.bounce's all_failures (finding recipients, no verdict)
  kzmail    `services.inbox.inbox`, --any-address: read, classify, suppress, remember
and prints messages/s, the ratio to kzmail, and kzmail's peak RSS for N/5 and N messages
(flat memory: the two should be close).
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.helpers.bounces import SAMPLES, exim, qmail, write_maildir  # noqa: E402

KINDS = [s for s in SAMPLES if s.kind == "bounce"]


def _messages(n: int) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    for i in range(n):
        who = f"reader{i}@example.org"
        own = f"<bounce.{i}@mx.test>"
        pick = i % 10
        if pick == 8:
            data = exim(who, "550 5.1.1 user unknown", returned_id=f"<r{i}@example.org>")
        elif pick == 9:
            data = qmail(who, "The users mailfolder is over the allowed quota (#5.2.2)")
        else:
            base = KINDS[i % len(KINDS)]
            data = base.data.replace(str(base.address).encode(), who.encode())
        data = (
            data.replace(b"<dsn.1@mx.test>", own.encode())
            .replace(b"<E1kz-0001@mx.exim.test>", own.encode())
            .replace(b"<qmail.77@qmail.test>", own.encode())
        )
        out.append((f"{1_700_000_000 + i}.M{i}P1.bench", data))

    return out


def _parse(box: Path) -> None:
    from email import message_from_bytes

    for sub in ("new", "cur"):
        for path in sorted((box / sub).iterdir()):
            message_from_bytes(path.read_bytes())


def _flufl(box: Path) -> None:
    from email import message_from_bytes

    from flufl.bounce import all_failures

    for path in sorted((box / "new").iterdir()):
        all_failures(message_from_bytes(path.read_bytes()))


def _kzmail(box: Path) -> None:
    from kzmail.models import Workspace
    from kzmail.services.inbox import Options, inbox

    state = box.parent / f"state-{time.monotonic_ns()}"
    ws = Workspace(state=state, root=box.parent)
    result = inbox(ws, Options(source=str(box), any_address=True))
    assert result.totals["bounce"] > 0, result.totals


def _child(job: Callable[[Path], None], box: Path, conn: object) -> None:
    import flufl.bounce  # noqa: F401 - imports are not what is measured

    import kzmail.services.inbox  # noqa: F401

    start = time.perf_counter()
    job(box)
    elapsed = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    conn.send((elapsed, rss))  # type: ignore[attr-defined]


def _run(job: Callable[[Path], None], box: Path) -> tuple[float, float]:
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.get_context("fork").Process(target=_child, args=(job, box, child))
    process.start()
    result = parent.recv()
    process.join()
    return result  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run (1,000)")
    parser.add_argument("--n", type=int, default=10_000)
    args = parser.parse_args()
    n = 1_000 if args.quick else args.n
    with tempfile.TemporaryDirectory() as tmp:
        small = write_maildir(Path(tmp) / "small", _messages(n // 5))
        box = write_maildir(Path(tmp) / "box", _messages(n))
        print(f"{n} bounces in a Maildir")
        times = {
            name: _run(job, box)
            for name, job in (("parse", _parse), ("flufl", _flufl), ("kzmail", _kzmail))
        }
        kz_time, kz_rss = times["kzmail"]
        for name, (elapsed, rss) in times.items():
            rate = n / elapsed
            print(
                f"  {name:<7} {rate:8.0f} msg/s  {kz_time / elapsed:5.2f}x kzmail's speed"
                f"  peak RSS {rss:6.1f} MB"
            )
        _, small_rss = _run(_kzmail, small)
        print(
            f"  kzmail peak RSS: {small_rss:.1f} MB for {n // 5}, {kz_rss:.1f} MB for {n} "
            f"messages (ratio {kz_rss / small_rss:.2f})"
        )
        print(f"  kzmail: {n / kz_time:.0f} messages/s (target >= 500)")


if __name__ == "__main__":
    main()

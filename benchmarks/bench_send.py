"""How fast kzmail sends, as ratios against peers measured in the same run, same sink.

    python benchmarks/bench_send.py [--quick] [--count N] [--scale N] [--connections C]

Against one lean loopback sink in its own process (benchmarks/lean_sink.py):
  (a) mailmerge (PyPI) on the same list, sending the same message (kzmail's text and HTML
      parts as multipart/alternative, as mailmerge documents): its rate in msg/s (start-up
      not counted); (a') the same with the HTML part alone, for reference;
  (b) aiosmtplib sending pre-built bytes (one kzmail message) over C reused connections;
  (c) kzmail end to end: 50 KB personalised messages, journal on (each `sending` mark
      fdatasync'ed before the message's final dot), no rate limit, C connections; timed
      from the first message (after the one-off template compile);
  (c'') the same with the journal's fdatasync left out, for reference (not power-cut safe);
  (c') the same with DKIM: every message signed with an RSA-2048 key;
      (c), (c'') and (c') run interleaved, three times each (once with --quick): medians,
      and the DKIM ratio as the median of each round's signed/unsigned pair;
  (e) the wire's ceiling: kzmail's transport sending one pre-built message over the same
      connections (no list, no rendering, no journal), best of three: no sender here can go
      much faster;
  (d) at scale (`--scale`, default 1,000,000; 10,000 with --quick), small messages:
      peak RSS of the sending process, and the time with the journal (fsync on; and
      without it, for reference) vs a no-op log (interleaved, best of 3 with --quick; wall
      clock and CPU time both shown: CPU time is what a busy shared machine inflates least).
Every measurement runs in a child process of its own (clean peak RSS, no shared GIL).
Targets (issue 15, fsync on): (c) >= 0.5x (e), (c) >= 30x (a), (c') >= 0.45x (c), peak RSS
<= 100 MB at 1,000,000 recipients, journal overhead < 10% CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kzmail.cli.common import current_workspace

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
FROM = "newsletter@arbeiterinnenmacht.example.org"


# the workbench: a campaign with a big or a small article, a list of N rows ---------------
def make_project(root: Path, rows: int, port: int, connections: int, big: bool) -> Path:
    shutil.copytree(REPO / "campaigns", root / "campaigns")
    shutil.copytree(REPO / "templates", root / "templates")
    article = (REPO / "campaigns" / "kasachstan.md").read_text(encoding="utf-8")
    # ~50 KB messages (HTML + text, quoted-printable) or small ones for the scale run
    (root / "campaigns" / "kasachstan.md").write_text(
        article[:11000] if big else article[:1500], encoding="utf-8"
    )
    with (root / "list.csv").open("w", encoding="utf-8") as out:
        out.write("email,name,city\n")
        for i in range(rows):
            out.write(f"leser{i}@example.org,Leser Nummer {i},Stadt {i % 97}\n")
    campaign = root / "campaigns" / "kasachstan.yaml"
    text = campaign.read_text(encoding="utf-8")
    text = (
        text.replace("host: local", "host: 127.0.0.1")
        .replace("port: 587", f"port: {port}")
        .replace("tls: starttls", "tls: none")
        .replace("per_second: 10", "per_second: 0")
        .replace(
            "connections: 4", f"connections: {connections}\n  messages_per_connection: 1000000"
        )
        .replace("subscribers: ../subscribers.example.csv", "subscribers: ../list.csv")
    )
    campaign.write_text(text, encoding="utf-8")
    return campaign


def with_dkim(campaign: Path) -> Path:
    """A copy of `campaign` that signs every message with a fresh RSA-2048 key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (campaign.parent / "dkim.private").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    signed = campaign.with_name("signed.yaml")
    signed.write_text(
        campaign.read_text(encoding="utf-8")
        + (
            "\ndkim:\n  domain: arbeiterinnenmacht.example.org\n  selector: news\n"
            "  key_file: dkim.private\n"
        ),
        encoding="utf-8",
    )
    return signed


# children: each measures one thing and prints JSON ---------------------------------------
def cpu_seconds() -> float:
    """CPU time of this process (every thread): what a busy shared machine cannot inflate."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_kzmail(campaign: Path, journal_on: bool, synced: bool = True) -> dict[str, Any]:
    """The real pipeline (list -> render -> message -> sender -> journal), timed from start.

    `synced=False` measures the journal without its fdatasync before each final dot (for
    reference only: that is the journal a power cut can undo).
    """
    sys.path.insert(0, str(REPO / "src"))
    if not synced:
        from kzmail.state.durable import WalSync

        async def unsynced(self: WalSync, generation: int) -> None:
            return None

        WalSync.covering = unsynced  # type: ignore[method-assign]
    from kzmail.delivery.engine import Sender, SendReport
    from kzmail.services import send as service_send
    from kzmail.services import workspace as app
    from kzmail.services.relays import relay_configs
    from kzmail.state.journal import Journal

    class NullLog:
        def status(self, campaign: str, address: str) -> str | None:
            return None

        def retryable(self, campaign: str, address: str) -> bool:
            return False

        def mark(self, *args: object, **kwargs: object) -> None:
            return None

        def suppress(self, list_id: str, address: str, reason: str) -> None:
            return None

        def has_deliveries(self, campaign: str) -> bool:
            return False

        def flush(self) -> None:
            return None

        async def committed(self) -> None:
            return None

    prepared = app.prepare(current_workspace(), campaign)
    journal = Journal(current_workspace().state)
    size = len(prepared.build(next(app.sendable(prepared, journal))).data)
    log: Any = journal if journal_on else NullLog()
    lanes = service_send._lanes(
        prepared.campaign,
        journal,
        None,
        relay_configs(current_workspace(), prepared.campaign),
    )
    pool = prepared.sign_pool()  # DKIM: signatures made in a process of their own
    sender = Sender(
        run_key="bench",
        envelope_from=prepared.factory.envelope_from,
        build=prepared.build if pool is None else prepared.build_unsealed,
        lanes=lanes,
        log=log,
        seal=None if pool is None else prepared.sealer(pool),
    )

    async def run() -> SendReport:
        if pool is None:
            return await sender.run(app.sendable(prepared, journal))
        await pool.start()  # timed: a real send starts its signing process too
        try:
            return await sender.run(app.sendable(prepared, journal))
        finally:
            await pool.close()

    cpu, start = cpu_seconds(), time.perf_counter()
    report = asyncio.run(run())
    journal.close()
    seconds = time.perf_counter() - start
    return {
        "count": report.sent,
        "seconds": seconds,
        "cpu": cpu_seconds() - cpu,
        "rss_mb": peak_rss_mb(),
        "size": size,
    }


def child_aiosmtplib(port: int, count: int, connections: int, message: Path) -> dict[str, Any]:
    import aiosmtplib

    data = message.read_bytes()

    async def lane(share: int) -> None:
        smtp = aiosmtplib.SMTP(
            hostname="127.0.0.1", port=port, start_tls=False, local_hostname="localhost"
        )
        await smtp.connect()
        for i in range(share):
            await smtp.sendmail(FROM, [f"leser{i}@example.org"], data)
        await smtp.quit()

    async def run() -> None:
        shares = [count // connections + (i < count % connections) for i in range(connections)]
        await asyncio.gather(*(lane(share) for share in shares))

    start = time.perf_counter()
    asyncio.run(run())
    return {"count": count, "seconds": time.perf_counter() - start, "rss_mb": peak_rss_mb()}


def child_ceiling(campaign: Path, count: int) -> dict[str, Any]:
    """kzmail's own transport sending one pre-built message over the campaign's lanes: no
    list, no rendering, no journal. What this machine and sink allow any sender here."""
    sys.path.insert(0, str(REPO / "src"))
    from kzmail.services import send as service_send
    from kzmail.services import workspace as app
    from kzmail.services.relays import relay_configs
    from kzmail.state.journal import Journal

    prepared = app.prepare(current_workspace(), campaign)
    journal = Journal(current_workspace().state)
    message = prepared.build(next(app.sendable(prepared, journal)))
    lanes = service_send._lanes(
        prepared.campaign,
        journal,
        None,
        relay_configs(current_workspace(), prepared.campaign),
    )

    async def lane(transport: Any, share: int) -> None:
        for _ in range(share):
            await transport.send(FROM, message.recipient, message.data, wire_safe=message.wire_safe)
        await transport.close()

    async def run() -> None:
        n = len(lanes)
        await asyncio.gather(
            *(lane(one.transport, count // n + (i < count % n)) for i, one in enumerate(lanes))
        )

    start = time.perf_counter()
    asyncio.run(run())
    return {"count": count, "seconds": time.perf_counter() - start}


def child(args: list[str]) -> None:
    what = args[0]
    if what == "kzmail":
        result = child_kzmail(
            Path(args[1]), journal_on=args[2] in ("journal", "nosync"), synced=args[2] != "nosync"
        )
    elif what == "ceiling":
        result = child_ceiling(Path(args[1]), int(args[2]))
    else:
        result = child_aiosmtplib(int(args[1]), int(args[2]), int(args[3]), Path(args[4]))
    print(json.dumps(result))


def run_child(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"benchmark child {args[0]} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


# mailmerge --------------------------------------------------------------------------------
def mailmerge(root: Path, port: int, rows: int, html: str, text: str | None) -> dict[str, Any]:
    """mailmerge's sending rate: its time for `rows` messages less its time for one (its
    start-up: Python, imports, reading the template), as kzmail is timed after its own.
    With `text`, the message kzmail sends; without, its HTML part alone."""
    name = "mailmerge" if text is not None else "mailmerge-html"
    once = _mailmerge_run(root / f"{name}-1", port, 1, html, text)
    full = _mailmerge_run(root / name, port, rows, html, text)
    return {"count": rows - 1, "seconds": full - once, "startup": once}


def _mailmerge_template(html: str, text: str | None) -> str:
    """kzmail's message as a mailmerge template: the same text and HTML parts as
    multipart/alternative (mailmerge's documented way), personalised in both; or, without
    `text`, a single text/html part. Braces are masked from Jinja."""
    head = "TO: {{email}}\nFROM: " + FROM + "\nSUBJECT: Solidaritaet\nMIME-Version: 1.0\n"
    html = (
        html.replace("{", "&#123;").replace("}", "&#125;") + "\n<p>Hallo {{name}} in {{city}}</p>\n"
    )
    if text is None:
        return head + "Content-Type: text/html; charset=utf-8\n\n" + html
    text = text.replace("{", "(").replace("}", ")") + "\nHallo {{name}} in {{city}}\n"
    return (
        head + 'Content-Type: multipart/alternative; boundary="kzbench"\n\n'
        "--kzbench\nContent-Type: text/plain; charset=utf-8\n\n"
        + text
        + "--kzbench\nContent-Type: text/html; charset=utf-8\n\n"
        + html
        + "--kzbench--\n"
    )


def _mailmerge_run(folder: Path, port: int, rows: int, html: str, text: str | None) -> float:
    folder.mkdir()
    (folder / "template.txt").write_text(_mailmerge_template(html, text), encoding="utf-8")
    with (folder / "database.csv").open("w", encoding="utf-8") as out:
        out.write("email,name,city\n")
        for i in range(rows):
            out.write(f"leser{i}@example.org,Leser Nummer {i},Stadt {i % 97}\n")
    (folder / "server.conf").write_text(f"[smtp_server]\nhost = 127.0.0.1\nport = {port}\n")
    start = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from mailmerge.__main__ import main; main()",
            "--no-dry-run",
            "--no-limit",
            "--template",
            "template.txt",
            "--database",
            "database.csv",
            "--config",
            "server.conf",
            "--output-format",
            "raw",
        ],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"mailmerge failed (pip install -e '.[bench]'):\n{done.stderr[-2000:]}")
    return seconds


# the run ----------------------------------------------------------------------------------
class Sink:
    """The lean sink in its own process."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "lean_sink.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        assert self.proc.stdin is not None
        self.port = int(self.proc.stdout.readline())

    def count(self) -> int:
        assert self.proc.stdout is not None
        assert self.proc.stdin is not None
        self.proc.stdin.write("count\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline())

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(10)


def rate(result: dict[str, Any]) -> float:
    return float(result["count"]) / float(result["seconds"])


def per_message(result: dict[str, Any]) -> float:
    """CPU microseconds per message of a kzmail run (every thread of the child)."""
    return float(result["cpu"]) / float(result["count"]) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--count", type=int, help="messages for (b) and (c)")
    parser.add_argument("--scale", type=int, help="recipients for the scale run (d)")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--repeats", type=int, help="scale runs per mode (3 quick, else 1)")
    parser.add_argument("--child", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    count = args.count or (1000 if args.quick else 10000)
    scale = args.scale or (10000 if args.quick else 1_000_000)
    merge_rows = 200 if args.quick else 500
    conns = args.connections
    sink = Sink()
    root = Path(tempfile.mkdtemp(prefix="kzmail-bench-"))
    try:
        figures = measure(
            root,
            sink,
            count,
            scale,
            merge_rows,
            conns,
            repeats=args.repeats or (3 if args.quick else 1),
            rounds=1 if args.quick else 3,
        )
    finally:
        sink.close()
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(figures))


def measure(
    root: Path,
    sink: Sink,
    count: int,
    scale: int,
    merge_rows: int,
    conns: int,
    repeats: int,
    rounds: int,
) -> dict[str, Any]:
    big = root / "big"
    big.mkdir()
    campaign = make_project(big, count, sink.port, conns, big=True)
    print(
        f"kzmail send benchmark: {count} messages over {conns} connections, "
        f"lean sink on port {sink.port}, {os.cpu_count()} CPUs",
        flush=True,
    )

    # (c) and (c') interleaved, the median of each: the machine is shared
    signed = with_dkim(campaign)
    kzs: list[dict[str, Any]] = []
    kds: list[dict[str, Any]] = []
    kns: list[dict[str, Any]] = []  # without the fsync, for reference
    for round_ in range(rounds):
        for runs, path, label, mode in (
            (kzs, campaign, "state", "journal"),
            (kns, campaign, "state-nosync", "nosync"),
            (kds, signed, "state-dkim", "journal"),
        ):
            before = sink.count()
            env = {**os.environ, "KZMAIL_STATE_DIR": str(big / f"{label}-{round_}")}
            runs.append(run_child("kzmail", str(path), mode, env=env, cwd=big))
            assert sink.count() - before == runs[-1]["count"] == count, (
                "the sink did not get every message"
            )
    kz, kn, kd = (sorted(runs, key=rate)[len(runs) // 2] for runs in (kzs, kns, kds))
    # one real kzmail message, for (a) and (b)
    sys.path.insert(0, str(REPO / "src"))
    os.environ["KZMAIL_STATE_DIR"] = str(big / "state-sample")
    from kzmail.services import workspace as app

    prepared = app.prepare(current_workspace(), campaign)
    sample = prepared.render(next(app.sendable(prepared, _null_journal(big))))
    message = big / "message.eml"
    message.write_bytes(sample[1].data)
    raw = run_child("aiosmtplib", str(sink.port), str(count), str(conns), str(message))
    ceilings = []  # bimodal on these machines: the best of three
    for round_ in range(3):
        env_ceiling = {**os.environ, "KZMAIL_STATE_DIR": str(big / f"state-ceiling-{round_}")}
        ceilings.append(run_child("ceiling", str(campaign), str(count), env=env_ceiling, cwd=big))
    ceiling = max(ceilings, key=rate)
    merge = mailmerge(root, sink.port, merge_rows, sample[0].html, sample[0].text)
    merge_html = mailmerge(root, sink.port, merge_rows, sample[0].html, None)
    size_kb = kz["size"] / 1024
    print(f"  message size             {size_kb:8.1f} KB")
    print(
        f"  (a) mailmerge            {rate(merge):8.0f} msg/s  ({merge_rows} of the same "
        f"text+HTML message; its {merge['startup']:.2f} s start-up not counted)"
    )
    print(
        f"  (a') mailmerge, HTML only {rate(merge_html):7.0f} msg/s  (the HTML part alone: "
        "a smaller message, and mailmerge skips its HTML parse for inline images)"
    )
    print(f"  (b) aiosmtplib, bytes    {rate(raw):8.0f} msg/s")
    print(
        f"  (c) kzmail end to end    {rate(kz):8.0f} msg/s  (median of "
        f"{', '.join(f'{rate(r):.0f}' for r in kzs)})"
    )
    print(
        f"  (c'') kzmail, no fsync   {rate(kn):8.0f} msg/s  (for reference; median of "
        f"{', '.join(f'{rate(r):.0f}' for r in kns)})"
    )
    print(
        f"  CPU per message          {per_message(kz):8.0f} us with the fsync, "
        f"{per_message(kn):.0f} us without (the medians' runs)"
    )
    print(
        f"  (c') kzmail + DKIM RSA   {rate(kd):8.0f} msg/s  (RSA-2048, every message signed; "
        f"median of {', '.join(f'{rate(r):.0f}' for r in kds)})"
    )
    print(
        f"  (e) wire ceiling         {rate(ceiling):8.0f} msg/s  (kzmail's transport, one "
        f"pre-built message: {rate(ceiling) / rate(merge):.1f}x mailmerge; best of "
        f"{', '.join(f'{rate(r):.0f}' for r in ceilings)})"
    )
    vs_merge, vs_raw = rate(kz) / rate(merge), rate(kz) / rate(raw)
    vs_ceiling = rate(kz) / rate(ceiling)
    print(
        f"  kzmail / wire ceiling    {vs_ceiling:8.2f}x   (target >= 0.5x)  "
        f"{'ok' if vs_ceiling >= 0.5 else 'MISSED'}  (without the fsync: "
        f"{rate(kn) / rate(ceiling):.2f}x)"
    )
    print(
        f"  kzmail / mailmerge       {vs_merge:8.1f}x   (target >= 30x)  "
        f"{'ok' if vs_merge >= 30 else 'MISSED'}  (without the fsync: "
        f"{rate(kn) / rate(merge):.1f}x)"
    )
    print(f"  kzmail / mailmerge HTML  {rate(kz) / rate(merge_html):8.1f}x   (for reference)")
    print(
        f"  kzmail / aiosmtplib      {vs_raw:8.2f}x   (target >= 0.85x) "
        f"{'ok' if vs_raw >= 0.85 else 'MISSED'}"
    )
    # each signed run against the unsigned run just before it: the pairs share the
    # machine's mood of the moment, which drifts between rounds
    pairs = sorted(rate(d) / rate(u) for u, d in zip(kzs, kds, strict=True))
    vs_unsigned = pairs[len(pairs) // 2]
    print(
        f"  DKIM / unsigned          {vs_unsigned:8.2f}x   (target >= 0.45x) "
        f"{'ok' if vs_unsigned >= 0.45 else 'MISSED'}  (median of the rounds' "
        f"{', '.join(f'{r:.2f}' for r in pairs)})",
        flush=True,
    )

    small = root / "small"
    small.mkdir()
    campaign = make_project(small, scale, sink.port, conns, big=False)
    ons, offs, nosyncs = [], [], []
    for round_ in range(repeats):  # interleaved, best of each: the machine is shared
        env = {**os.environ, "KZMAIL_STATE_DIR": str(small / f"state-on-{round_}")}
        ons.append(run_child("kzmail", str(campaign), "journal", env=env, cwd=small))
        env = {**os.environ, "KZMAIL_STATE_DIR": str(small / f"state-off-{round_}")}
        offs.append(run_child("kzmail", str(campaign), "nolog", env=env, cwd=small))
        env = {**os.environ, "KZMAIL_STATE_DIR": str(small / f"state-nosync-{round_}")}
        nosyncs.append(run_child("kzmail", str(campaign), "nosync", env=env, cwd=small))
    on = min(ons, key=lambda r: float(r["seconds"]))
    on["rss_mb"] = max(float(r["rss_mb"]) for r in ons)
    on["cpu"] = min(float(r["cpu"]) for r in ons)
    off = min(offs, key=lambda r: float(r["seconds"]))
    off["cpu"] = min(float(r["cpu"]) for r in offs)
    nosync = min(nosyncs, key=lambda r: float(r["seconds"]))
    nosync["cpu"] = min(float(r["cpu"]) for r in nosyncs)
    overhead = on["seconds"] / off["seconds"] - 1
    cpu_overhead = on["cpu"] / off["cpu"] - 1
    nosync_overhead = nosync["seconds"] / off["seconds"] - 1
    nosync_cpu_overhead = nosync["cpu"] / off["cpu"] - 1
    print(f"  scale run                {scale:8d} recipients, {on['size'] / 1024:.1f} KB each")
    print(
        f"  peak RSS, journal on     {on['rss_mb']:8.1f} MB   (target <= 100 MB) "
        f"{'ok' if on['rss_mb'] <= 100 else 'MISSED'}"
    )
    print(
        f"  send time, journal on    {on['seconds']:8.1f} s  ({rate(on):.0f} msg/s), "
        f"CPU {on['cpu']:.1f} s"
    )
    print(
        f"  send time, no fsync      {nosync['seconds']:8.1f} s  ({rate(nosync):.0f} msg/s), "
        f"CPU {nosync['cpu']:.1f} s  (for reference)"
    )
    print(
        f"  send time, no-op log     {off['seconds']:8.1f} s  ({rate(off):.0f} msg/s), "
        f"CPU {off['cpu']:.1f} s"
    )
    print(
        f"  journal overhead, wall   {overhead * 100:8.1f} %  (target < 10%)   "
        f"{'ok' if overhead < 0.10 else 'MISSED'}"
    )
    print(
        f"  journal overhead, CPU    {cpu_overhead * 100:8.1f} %  (target < 10%)   "
        f"{'ok' if cpu_overhead < 0.10 else 'MISSED'}  "
        f"({(on['cpu'] - off['cpu']) / scale * 1e6:.0f} us per message)",
        flush=True,
    )
    print(
        f"  without the fsync        {nosync_overhead * 100:8.1f} % wall, "
        f"{nosync_cpu_overhead * 100:.1f} % CPU  (for reference: not power-cut safe)",
        flush=True,
    )
    print(
        f"  (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs: wall-clock "
        "ratios are only as good as the machine is quiet)"
    )
    return {
        "size_kb": round(size_kb, 1),
        "mailmerge": round(rate(merge)),
        "mailmerge_html_only": round(rate(merge_html)),
        "aiosmtplib": round(rate(raw)),
        "kzmail": round(rate(kz)),
        "kzmail_nosync": round(rate(kn)),
        "kzmail_cpu_us": round(per_message(kz)),
        "kzmail_nosync_cpu_us": round(per_message(kn)),
        "ceiling": round(rate(ceiling)),
        "vs_ceiling": round(vs_ceiling, 2),
        "vs_ceiling_nosync": round(rate(kn) / rate(ceiling), 2),
        "vs_mailmerge_nosync": round(rate(kn) / rate(merge), 1),
        "ceiling_vs_mailmerge": round(rate(ceiling) / rate(merge), 1),
        "vs_mailmerge": round(vs_merge, 1),
        "vs_aiosmtplib": round(vs_raw, 2),
        "dkim_rsa": round(rate(kd)),
        "dkim_vs_unsigned": round(vs_unsigned, 2),
        "scale": scale,
        "rss_mb": round(on["rss_mb"], 1),
        "journal_overhead": round(overhead, 3),
        "journal_cpu_overhead": round(cpu_overhead, 3),
        "journal_nosync_overhead": round(nosync_overhead, 3),
        "journal_nosync_cpu_overhead": round(nosync_cpu_overhead, 3),
    }


def _null_journal(folder: Path) -> Any:
    from kzmail.state.journal import Journal

    return Journal(folder / "state-sample")


if __name__ == "__main__":
    if not re.match(r"3\.(1[1-9])", sys.version.split()[0]):
        raise SystemExit("needs Python 3.11+")
    main()

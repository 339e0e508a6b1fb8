"""Speed and peak memory of `kzmail check` and `kzmail send --dry-run` on a big list.

Generates a 1,000,000-row CSV (`--quick`: 50,000) with 1% invalid addresses and 1%
duplicates, then runs each command in its own process and reads that process's peak RSS
from the kernel (os.wait4). The baseline, measured in the same run on the same file, is a
plain `csv.reader` loop in a fresh interpreter: figures are given as ratios to it.

    python benchmarks/bench_lists.py [--quick] [--rows N] [--skip-send]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LIMIT_MB = 200.0

BASELINE = """
import csv, sys
count = 0
with open(sys.argv[1], encoding="utf-8", newline="") as handle:
    for row in csv.reader(handle):
        count += 1
print(count)
"""

KZMAIL = "import sys; from kzmail.cli.main import main; sys.argv[0] = 'kzmail'; main()"


def make_list(path: Path, rows: int) -> None:
    cities = ["Berlin", "Köln", "Hamburg", "Müller, Anna & Co", "Zürich", "Almaty"]
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("E-Mail,Name,Stadt,PLZ\r\n")
        for i in range(rows):
            if i % 100 == 7:
                address = f"broken{i}.example.org"  # 1% invalid
            elif i % 100 == 13:
                address = f"User{i - 10}@Example{(i - 10) % 97}.org"  # 1% duplicates
            else:
                address = f"user{i}@example{i % 97}.org"
            city = cities[i % len(cities)]
            out.write(f'{address},Person Nummer {i},"{city}",{10000 + i % 90000}\r\n')


def run(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, int]:
    """Wall seconds, peak RSS in MB, exit code of one child process."""
    with tempfile.TemporaryFile() as errors:  # a pipe could fill up and block the child
        start = time.perf_counter()
        proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        code = os.waitstatus_to_exitcode(status)
        proc.returncode = code
        errors.seek(0)
        error = errors.read().decode(errors="replace")
    if code != 0:
        print(f"  (exit {code}) {error.strip()[:300]}")
    return elapsed, usage.ru_maxrss / 1024, code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50,000 rows instead of 1,000,000")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--skip-send", action="store_true", help="measure `check` only")
    options = parser.parse_args()
    rows = options.rows or (50_000 if options.quick else 1_000_000)
    with tempfile.TemporaryDirectory(prefix="kzmail-bench-") as tmp:
        work = Path(tmp)
        for name in ("campaigns", "templates"):
            shutil.copytree(REPO / name, work / name)
        big = work / "big.csv"
        make_list(big, rows)
        campaign = work / "campaigns" / "kasachstan.yaml"
        text = campaign.read_text(encoding="utf-8")
        campaign.write_text(
            text.replace("subscribers: ../subscribers.example.csv", "subscribers: ../big.csv"),
            encoding="utf-8",
        )
        env = {**os.environ, "KZMAIL_STATE_DIR": str(work / ".kzmail")}
        size = big.stat().st_size / 1e6
        print(f"bench_lists: {rows:,} rows, {size:.1f} MB CSV")
        base_s, base_mb, _ = run([sys.executable, "-c", BASELINE, str(big)], work, env)
        print(
            f"  baseline csv.reader     {rows / base_s:>10,.0f} rows/s  peak RSS {base_mb:6.1f} MB"
        )
        commands = [("check", [sys.executable, "-c", KZMAIL, "check", str(campaign)])]
        if not options.skip_send:
            commands.append(
                (
                    "send --dry-run",
                    [sys.executable, "-c", KZMAIL, "send", str(campaign), "--dry-run"],
                )
            )
        failed = False
        for label, args in commands:
            seconds, peak, code = run(args, work, env)
            within = "ok" if peak < LIMIT_MB else f"OVER {LIMIT_MB:.0f} MB"
            print(
                f"  kzmail {label:<16} {rows / seconds:>10,.0f} rows/s  "
                f"peak RSS {peak:6.1f} MB  ({seconds:.1f} s; {base_s / seconds:.3f}x "
                f"baseline speed, {peak / base_mb:.1f}x baseline RSS; {within})"
            )
            failed = failed or code != 0 or peak >= LIMIT_MB
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""How fast `kzmail --help` and `kzmail --version` start, against `python -c "import typer"`.

Each command runs in a fresh interpreter, best of `--runs` (default 15) wall-clock times;
the figure is the ratio to the baseline measured in the same run. Target: `--help` within
3x of importing typer alone (the heavy libraries load only when a command needs them).

    python benchmarks/bench_cli.py [--runs N] [--src DIR] [--entry MODULE]

`--src`/`--entry` measure another checkout (e.g. an older commit, whose entry point was
`kzmail.cli`) in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def best(args: list[str], env: dict[str, str], runs: int) -> float:
    fastest = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(
            args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True
        )
        fastest = min(fastest, time.perf_counter() - start)
    return fastest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="5 runs each")
    parser.add_argument("--src", type=Path, default=REPO / "src")
    parser.add_argument("--entry", default="kzmail.cli.main")
    options = parser.parse_args()
    runs = 5 if options.quick else options.runs
    env = {**os.environ, "PYTHONPATH": str(options.src)}
    kzmail = [
        sys.executable,
        "-c",
        f"import sys; sys.argv[0] = 'kzmail'; from {options.entry} import main; main()",
    ]
    baseline = best([sys.executable, "-c", "import typer"], env, runs)
    results = {"import_typer_s": round(baseline, 4)}
    print(
        f"bench_cli ({options.src}): python -c 'import typer' {baseline * 1000:6.1f} ms (baseline)"
    )
    for flag in ("--help", "--version"):
        try:
            seconds = best([*kzmail, flag], env, runs)
        except subprocess.CalledProcessError:
            print(f"  kzmail {flag:<9} fails here")
            continue
        results[flag.strip("-")] = round(seconds / baseline, 2)
        print(f"  kzmail {flag:<9} {seconds * 1000:6.1f} ms = {seconds / baseline:.2f}x baseline")
    print(json.dumps({"bench": "cli", **results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

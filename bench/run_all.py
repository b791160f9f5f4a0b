"""Every benchmark figure in one command: ``make bench`` runs this.

    .venv/bin/python bench/run_all.py [--quick]

1. ``bench/intake.py``: intake vs floor under gunicorn at 1, 16 and 64
   connections (3 runs of 10 s each, medians), with CPU per request.
2. ``bench/slow.py``: handlers that wait 200 ms, sync and async, at 16 and
   64 connections, with PostgreSQL's connections sampled.
3. ``bench/memory.py``: what a worker restart costs, and a worker's memory
   over a minute of deliveries with recycling off.
4. ``bench/peer.py``: our intake beside dj-stripe's webhook view at 16
   connections (3 runs of 10 s, medians): throughput and CPU per request,
   as ratios. The first run builds the peer's venv.
5. ``bench/export.py``: ``export_submissions``, CSV and XLSX at 10k, 100k
   and 1M submissions (3 runs each).
6. ``bench/admin_pages.py``: admin changelists and console pages at a
   million events (7 runs).

The seeded databases (``webhooks_bench_10k``, ``_100k``, ``_1m``) are kept
between runs when their counts are right, so only the first run pays for
seeding (about three minutes for the million). Results go to
``bench/results/*.json``; ``BENCHMARKS.md`` quotes them. ``--quick`` runs
fewer, shorter rounds and skips the million, to check the harness.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, say


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if args.quick:
        steps = [
            ("intake", ["--runs", "1", "--duration", "3"]),
            ("slow", ["--runs", "1", "--duration", "3"]),
            ("memory", ["--duration", "10"]),
            ("peer", ["--runs", "1", "--duration", "3"]),
            ("export", ["--sizes", "10000,100000", "--runs", "1"]),
            ("admin_pages", ["--runs", "2", "--submissions", "100000"]),
        ]
    else:
        steps = [
            ("intake", ["--runs", "3", "--duration", "10"]),
            ("slow", ["--runs", "3", "--duration", "10"]),
            ("memory", ["--duration", "60"]),
            ("peer", ["--runs", "3", "--duration", "10"]),
            ("export", ["--runs", "3", "--xlsx-sizes", "10000,100000,1000000"]),
            ("admin_pages", ["--runs", "7"]),
        ]
    failed = []
    for name, step_args in steps:
        say(f"\n== bench/{name}.py {' '.join(step_args)} ==")
        # Each in its own process: each sets Django up on its own database.
        script = ROOT / "bench" / f"{name}.py"
        command = [sys.executable, str(script), *step_args]
        if subprocess.run(command, check=False).returncode:  # noqa: S603 - our scripts
            failed.append(name)
    say(f"\nall figures in {(time.perf_counter() - started) / 60:.1f} min")
    if failed:
        say(f"FAILED: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Time and peak memory of ``export_submissions`` at 10k, 100k and 1M submissions.

    .venv/bin/python bench/export.py [--sizes 10000,100000,1000000] [--runs 3]

Each size is its own seeded database (``bench/datasets.py``; five answers per
submission). Each run is a fresh ``manage.py export_submissions --output
FILE`` process on that database; its wall time (Django start-up included)
and peak RSS (``wait4``'s ``ru_maxrss``) are recorded, and the file's rows
counted. Reports medians, answers per second, and each size's peak RSS
against the smallest's. Writes ``bench/results/export.json``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, django_env, median, say, write_results
from bench.datasets import ANSWERS, dataset


def export_once(url: str, output: Path) -> tuple[float, float]:
    """Seconds and peak RSS (MiB) of one export process."""
    started = time.perf_counter()
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and script
        [
            sys.executable,
            str(ROOT / "manage.py"),
            "export_submissions",
            "--output",
            str(output),
        ],
        cwd=ROOT,
        env=django_env(url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(process.stderr.read().decode()[-2000:])
    return elapsed, usage.ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    sizes = [int(n) for n in args.sizes.split(",")]
    out: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-export-") as work:
        output = Path(work) / "export.csv"
        for size in sizes:
            url = dataset(size)
            times, peaks = [], []
            for run in range(args.runs):
                seconds, peak = export_once(url, output)
                times.append(seconds)
                peaks.append(peak)
                say(
                    f"  {size:>9,} submissions run {run + 1}: {seconds:6.1f} s, "
                    f"peak RSS {peak:6.1f} MiB"
                )
            with output.open("rb") as f:
                rows = sum(1 for _ in f) - 1
            answers = size * ANSWERS
            seconds = median(times)
            out[str(size)] = {
                "submissions": size,
                "answers": answers,
                "csv_rows": rows,
                "csv_bytes": output.stat().st_size,
                "seconds": seconds,
                "answers_per_second": round(answers / seconds),
                "peak_rss_mib": median(peaks),
                "raw_seconds": [round(t, 3) for t in times],
                "raw_peak_rss_mib": [round(p, 1) for p in peaks],
            }
    smallest = out[str(sizes[0])]["peak_rss_mib"]
    say(
        f"{'submissions':>12} {'seconds':>8} {'answers/s':>10} {'peak RSS':>9}  vs first"
    )
    for size in sizes:
        r = out[str(size)]
        r["rss_vs_first"] = round(r["peak_rss_mib"] / smallest, 3)
        say(
            f"{size:>12,} {r['seconds']:>8.1f} {r['answers_per_second']:>10,} "
            f"{r['peak_rss_mib']:>7.1f} M  {r['rss_vs_first']:.2f}x"
        )
    path = write_results(
        "export",
        {
            "command": "bench/export.py " + " ".join(argv or sys.argv[1:]),
            "runs": args.runs,
            "sizes": out,
        },
    )
    say(f"results: {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Time and peak memory of ``export_submissions``, CSV and XLSX, by size.

    .venv/bin/python bench/export.py [--sizes 10000,100000,1000000]
        [--xlsx-sizes 10000,100000] [--runs 3] [--database URL]

Each size is its own seeded database (``bench/datasets.py``; five answers per
submission). Each run is a fresh ``manage.py export_submissions --format F
--output FILE`` process on that database; its wall time (Django start-up
included) and peak RSS (``wait4``'s ``ru_maxrss``) are recorded, and the
rows it reports checked against the size. CSV runs at ``--sizes``, XLSX at
``--xlsx-sizes`` (by default 10k and 100k: an XLSX of a million rows takes
minutes); with ``--database``, the whole of that database as it is, CSV
only. Reports medians, answers per second, and each size's peak RSS
against the smallest's, per format. Writes ``bench/results/export.json``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    ROOT,
    BenchError,
    django_env,
    median,
    query_one,
    say,
    write_results,
)
from bench.datasets import ANSWERS, dataset

FORMATS = ("csv", "xlsx")


def export_once(url: str, output: Path, file_format: str) -> tuple[float, float, int]:
    """Seconds, peak RSS (MiB) and rows written of one export process."""
    started = time.perf_counter()
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and script
        [
            sys.executable,
            str(ROOT / "manage.py"),
            "export_submissions",
            "--format",
            file_format,
            "--output",
            str(output),
        ],
        cwd=ROOT,
        env=django_env(url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    # The report is one line and errors are short: the pipes cannot fill up.
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise BenchError(process.stderr.read().decode()[-2000:])
    report = process.stdout.read().decode()
    rows = re.search(r"Exported (\d+) submission", report)
    if rows is None:
        raise BenchError(f"No report from export_submissions: {report!r}")
    return elapsed, usage.ru_maxrss / 1024, int(rows[1])


def measure(url: str, size: int, file_format: str, runs: int, work: Path) -> dict:
    output = work / f"export.{file_format}"
    times, peaks = [], []
    for run in range(runs):
        seconds, peak, rows = export_once(url, output, file_format)
        if rows != size:
            raise BenchError(f"{file_format} export wrote {rows:,} rows, not {size:,}.")
        times.append(seconds)
        peaks.append(peak)
        say(
            f"  {size:>9,} submissions {file_format:>4} run {run + 1}: "
            f"{seconds:6.1f} s, peak RSS {peak:6.1f} MiB"
        )
    answers = size * ANSWERS
    seconds = median(times)
    return {
        "submissions": size,
        "answers": answers,
        "rows": rows,
        "bytes": output.stat().st_size,
        "seconds": seconds,
        "answers_per_second": round(answers / seconds),
        "peak_rss_mib": median(peaks),
        "raw_seconds": [round(t, 3) for t in times],
        "raw_peak_rss_mib": [round(p, 1) for p in peaks],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="CSV sizes")
    parser.add_argument("--xlsx-sizes", default="10000,100000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--database",
        help="Export the whole of this PostgreSQL URL as it is, CSV only (no "
        "seeding; bench/partitions.py passes its ten-million-event database).",
    )
    args = parser.parse_args(argv)
    wanted = {
        "csv": [int(n) for n in args.sizes.split(",") if n],
        "xlsx": [int(n) for n in args.xlsx_sizes.split(",") if n],
    }
    urls = {}
    if args.database:
        size = query_one(
            args.database, "SELECT count(*) FROM submissions_formsubmission"
        )
        wanted = {"csv": [size], "xlsx": []}
        urls[size] = args.database
    out: dict[str, dict[str, dict]] = {fmt: {} for fmt in FORMATS if wanted[fmt]}
    with tempfile.TemporaryDirectory(prefix="bench-export-") as work:
        for size in sorted({n for sizes in wanted.values() for n in sizes}):
            url = urls.get(size) or dataset(size)
            for fmt in out:
                if size in wanted[fmt]:
                    out[fmt][str(size)] = measure(url, size, fmt, args.runs, Path(work))
    for fmt, results in out.items():
        smallest = next(iter(results.values()))["peak_rss_mib"]
        say(f"\n{fmt.upper()}")
        say(
            f"{'submissions':>12} {'seconds':>8} {'answers/s':>10} {'peak RSS':>9}"
            f"  vs first  {'vs CSV' if fmt != 'csv' else ''}"
        )
        for size, r in results.items():
            r["rss_vs_first"] = round(r["peak_rss_mib"] / smallest, 3)
            csv = out.get("csv", {}).get(size)
            if fmt != "csv" and csv:
                r["seconds_vs_csv"] = round(r["seconds"] / csv["seconds"], 2)
            say(
                f"{int(size):>12,} {r['seconds']:>8.1f} {r['answers_per_second']:>10,} "
                f"{r['peak_rss_mib']:>7.1f} M  {r['rss_vs_first']:.2f}x"
                + (f"     {r['seconds_vs_csv']:.1f}x" if "seconds_vs_csv" in r else "")
            )
    path = write_results(
        "export",
        {
            "command": "bench/export.py " + " ".join(argv or sys.argv[1:]),
            "runs": args.runs,
            "database": args.database and args.database.rsplit("/", 1)[-1],
            "formats": out,
        },
    )
    say(f"results: {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

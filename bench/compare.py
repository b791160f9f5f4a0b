"""What each change bought: the intake and the floor at several commits, one harness.

    .venv/bin/python bench/compare.py COMMIT [COMMIT ...] [--runs 2]
        [--duration 8] [--level 16]

For each commit, in the order given: a detached git worktree of it (under
the system's temporary directory, sharing this checkout's ``.venv``), with
*today's* harness copied over it (``bench/{common,cpu,intake,soak,
webhook_handlers}.py`` and ``wrk_post.lua``), so every commit is measured
the same way: ``bench/intake.py --levels LEVEL`` with that commit's code,
``gunicorn.conf.py`` defaults, settings and migrations, on
``webhooks_bench_compare``. Runs alternate between commits (run 1 of every
commit, then run 2...), so drift on a shared machine hits all alike.

Reports, per commit, the median requests/s and CPU per request (server +
PostgreSQL) of the intake and of the floor, and the ratios. Writes
``bench/results/compare.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, database_url, median, say, write_results

HARNESS = [
    "common.py",
    "cpu.py",
    "intake.py",
    "soak.py",
    "webhook_handlers.py",
    "wrk_post.lua",
]


def worktree(commit: str, base: Path) -> Path:
    path = base / commit
    subprocess.run(  # noqa: S603 - git, our own repository
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), commit],  # noqa: S607
        check=True,
        capture_output=True,
    )
    (path / ".venv").symlink_to(ROOT / ".venv")
    for name in HARNESS:
        shutil.copy2(ROOT / "bench" / name, path / "bench" / name)
    return path


def measure(path: Path, *, level: int, duration: int, tag: str) -> dict[str, Any]:
    output = f"compare-{tag}"
    subprocess.run(  # noqa: S603 - our interpreter, our script
        [
            str(ROOT / ".venv" / "bin" / "python"),
            "bench/intake.py",
            "--runs",
            "1",
            "--duration",
            str(duration),
            "--levels",
            str(level),
            "--output",
            output,
            "--database-url",
            database_url("webhooks_bench_compare"),
        ],
        cwd=path,
        check=True,
        capture_output=True,
    )
    result = json.loads((path / "bench" / "results" / f"{output}.json").read_text())
    return result["levels"][str(level)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("commits", nargs="+")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--level", type=int, default=16)
    args = parser.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="bench-compare-"))
    paths = {commit: worktree(commit, base) for commit in args.commits}
    runs: dict[str, list[dict[str, Any]]] = {commit: [] for commit in args.commits}
    try:
        for run in range(args.runs):
            for commit, path in paths.items():
                level = measure(
                    path, level=args.level, duration=args.duration, tag=commit
                )
                runs[commit].append(level)
                say(
                    f"  run {run + 1}/{args.runs} {commit}: intake "
                    f"{level['intake']['rps']:.0f} req/s {level['intake']['cpu_ms']:.2f} ms CPU, "
                    f"floor {level['floor']['rps']:.0f} req/s {level['floor']['cpu_ms']:.2f} ms"
                )
    finally:
        for path in paths.values():
            subprocess.run(  # noqa: S603 - git, our own repository
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)],  # noqa: S607
                check=False,
                capture_output=True,
            )
    table: dict[str, Any] = {}
    for commit, levels in runs.items():
        row: dict[str, Any] = {}
        for target in ("intake", "floor"):
            for key in ("rps", "cpu_ms", "cpu_ms_server", "cpu_ms_postgres"):
                row[f"{target}_{key}"] = median([lv[target][key] for lv in levels])
        row["throughput_ratio"] = round(row["intake_rps"] / row["floor_rps"], 3)
        row["cpu_ratio"] = round(row["intake_cpu_ms"] / row["floor_cpu_ms"], 3)
        subject = subprocess.run(  # noqa: S603 - git, our own repository
            ["git", "-C", str(ROOT), "log", "-1", "--format=%s", commit],  # noqa: S607
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        table[commit] = {"subject": subject, **row, "runs": levels}
    path = write_results(
        "compare",
        {
            "command": "bench/compare.py " + " ".join(argv or sys.argv[1:]),
            "level": args.level,
            "duration_s": args.duration,
            "runs": args.runs,
            "commits": table,
        },
    )
    say(
        f"{'commit':<10} {'intake req/s':>12} {'CPU ms':>7} {'(srv+pg)':>12} "
        f"{'floor req/s':>11} {'CPU ms':>7} {'req/s ratio':>11} {'CPU ratio':>9}"
    )
    for commit, row in table.items():
        say(
            f"{commit:<10} {row['intake_rps']:>12.0f} {row['intake_cpu_ms']:>7.2f} "
            f"{row['intake_cpu_ms_server']:>5.2f}+{row['intake_cpu_ms_postgres']:<5.2f} "
            f"{row['floor_rps']:>11.0f} {row['floor_cpu_ms']:>7.2f} "
            f"{row['throughput_ratio']:>11.0%} {row['cpu_ratio']:>8.2f}x"
        )
    say(f"results: {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Big forms: seconds to store one delivery of N answers, at several commits.

    .venv/bin/python bench/big_forms.py [COMMIT ...] [--sizes 10000,30000,100000]
        [--runs 2] [--beside 3]

For each commit (default ``b44d3d3``, the code of 2026-11-24, and ``HEAD``):
a detached worktree of it with today's harness copied over it (as
``bench/compare.py`` does), the production configuration (gunicorn with
``gunicorn.conf.py``'s defaults, PostgreSQL, ``DJANGO_DEBUG=false``,
``WEBHOOK_MAX_BODY_BYTES`` raised to 16 MiB so the bodies fit), on a fresh
``webhooks_bench_big_forms``. It posts one signed delivery of N answers to
an unrouted handler (stored all the same: 404 ``unknown_handler``) and
times it from the client, with the CPU gunicorn and PostgreSQL spent; then,
``--beside`` deliveries of the largest size at once while small ordinary
deliveries arrive beside them, every 50 ms: how many of those were
answered 2xx, and stored.

Prints a table (seconds and seconds per 10,000 answers, per commit) and
writes ``bench/results/big_forms.json``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, database_url, median, say, write_results

URL = database_url("webhooks_bench_big_forms")
MAX_BODY = 16 * 1024 * 1024
GUNICORN_TIMEOUT = 300


def body_of(size: int, tag: str) -> bytes:
    values = {
        f"question_{index:06d}": f"answer {index} of {tag}" for index in range(size)
    }
    payload = {"handler": "nobody-handles-this", "id": tag, "formValues": values}
    return json.dumps(payload, separators=(",", ":")).encode()


def post(port: int, body: bytes, secret: str, *, timeout: float) -> tuple[int, float]:
    """(status, seconds); status 0 when no answer came."""
    from submissions.tokens import sign_token

    headers = {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {sign_token(secret, body=body, lifetime_seconds=3600)}",
    }
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", "/webhooks/bench/", body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        status = response.status
    except (OSError, http.client.HTTPException):
        status = 0
    finally:
        conn.close()
    return status, time.perf_counter() - started


def answers_of(tag: str) -> int | None:
    from bench.common import query_one

    where = f" WHERE e.delivery_id = '{tag}'"  # our own tag
    query = (
        "SELECT count(*) FROM submissions_formanswer a"  # noqa: S608
        " JOIN submissions_formsubmission s ON s.id = a.submission_id"
        " JOIN submissions_webhookevent e ON e.id = s.event_id" + where
    )
    return query_one(URL, query)


def here(args: argparse.Namespace) -> dict[str, Any]:
    """Measure the code of this checkout (run inside a commit's worktree)."""
    from bench.cpu import CpuMeter, PostgresBackends
    from bench.intake import intake_prepare
    from bench.soak import Gunicorn, free_port

    secret = intake_prepare(URL)
    work = Path(tempfile.mkdtemp(prefix="bench-big-forms-"))
    server = Gunicorn(
        database_url=URL,
        port=free_port(),
        workers=None,
        conn_max_age=None,
        log_path=work / "gunicorn.log",
        extra_env={
            "WEBHOOK_MAX_BODY_BYTES": str(MAX_BODY),
            "GUNICORN_TIMEOUT": str(GUNICORN_TIMEOUT),
        },
    )
    sizes = [int(n) for n in args.sizes.split(",")]
    out: dict[str, Any] = {"sizes": {}, "beside": None}
    try:
        server.wait_ready(path="/webhooks/bench/")
        post(server.port, body_of(10, "warm"), secret, timeout=30)
        meter = CpuMeter(server=server.process.pid, postgres=PostgresBackends(URL))
        for size in sizes:
            runs = []
            for run in range(args.runs):
                tag = f"n{size}-r{run}"
                body = body_of(size, tag)
                meter.start()
                status, seconds = post(
                    server.port, body, secret, timeout=GUNICORN_TIMEOUT
                )
                cpu = meter.stop()
                runs.append(
                    {
                        "status": status,
                        "seconds": round(seconds, 3),
                        "cpu_s": cpu,
                        "answers_stored": answers_of(tag),
                        "body_bytes": len(body),
                    }
                )
                say(
                    f"    {size:>7} answers: {status} in {seconds:.2f} s "
                    f"(CPU {sum(cpu.values()):.2f} s), stored {runs[-1]['answers_stored']}"
                )
            out["sizes"][str(size)] = {
                "seconds": median([r["seconds"] for r in runs]),
                "runs": runs,
            }
        if args.beside:
            out["beside"] = beside(server.port, secret, max(sizes), args.beside)
    finally:
        server.stop()
    return out


def beside(port: int, secret: str, size: int, count: int) -> dict[str, Any]:
    """``count`` big deliveries at once, small ones arriving beside them."""
    from bench.common import query_one, sample_delivery

    big: list[tuple[int, float]] = []
    small: list[tuple[int, float]] = []
    bodies = [body_of(size, f"beside-{n}") for n in range(count)]
    threads = [
        threading.Thread(
            target=lambda b=b: big.append(
                post(port, b, secret, timeout=GUNICORN_TIMEOUT)
            )
        )
        for b in bodies
    ]
    for thread in threads:
        thread.start()
    index = 0
    small_threads = []
    while any(t.is_alive() for t in threads):
        _, body = sample_delivery(index, tag="small", handler="soak-ok")
        thread = threading.Thread(
            target=lambda b=body: small.append(post(port, b, secret, timeout=60))
        )
        thread.start()
        small_threads.append(thread)
        index += 1
        time.sleep(0.05)
    for thread in threads + small_threads:
        thread.join()
    stored = query_one(
        URL,
        "SELECT count(*) FROM submissions_webhookevent"
        " WHERE delivery_id LIKE 'small-%' AND status = 'processed'",
    )
    result = {
        "big": {
            "statuses": sorted(s for s, _ in big),
            "seconds": [round(t, 2) for _, t in big],
        },
        "small_sent": len(small),
        "small_2xx": sum(1 for s, _ in small if 200 <= s < 300),
        "small_stored_processed": stored,
        "small_p99_s": round(sorted(t for _, t in small)[int(len(small) * 0.99) - 1], 3)
        if small
        else None,
    }
    say(
        f"    {count} x {size} at once: big {result['big']['statuses']}; small "
        f"{result['small_2xx']}/{result['small_sent']} 2xx, {stored} stored processed"
    )
    return result


def worktree(commit: str, base: Path) -> Path:
    from bench.compare import worktree as compare_worktree

    path = compare_worktree(commit, base)
    shutil.copy2(ROOT / "bench" / "big_forms.py", path / "bench" / "big_forms.py")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("commits", nargs="*", default=["b44d3d3", "HEAD"])
    parser.add_argument("--sizes", default="10000,30000,100000")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--beside", type=int, default=3)
    parser.add_argument("--here", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--output", default="big_forms", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.here:
        (ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)
        (ROOT / "bench" / "results" / f"{args.output}.json").write_text(
            json.dumps(here(args))
        )
        return 0
    base = Path(tempfile.mkdtemp(prefix="bench-big-forms-"))
    table: dict[str, Any] = {}
    for commit in args.commits:
        sha = subprocess.run(  # noqa: S603 - git, our own repository
            ["git", "-C", str(ROOT), "rev-parse", "--short", commit],  # noqa: S607
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        say(f"  {commit} ({sha})")
        path = worktree(sha, base)
        try:
            subprocess.run(  # noqa: S603 - our interpreter, our script
                [
                    str(ROOT / ".venv" / "bin" / "python"),
                    "bench/big_forms.py",
                    "--here",
                    "--sizes",
                    args.sizes,
                    "--runs",
                    str(args.runs),
                    "--beside",
                    str(args.beside),
                    "--output",
                    f"big_forms-{sha}",
                ],
                cwd=path,
                check=True,
            )
            table[sha] = json.loads(
                (path / "bench" / "results" / f"big_forms-{sha}.json").read_text()
            )
        finally:
            subprocess.run(  # noqa: S603 - git, our own repository
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)],  # noqa: S607
                check=False,
                capture_output=True,
            )
    path = write_results(
        "big_forms",
        {
            "command": "bench/big_forms.py " + " ".join(argv or sys.argv[1:]),
            "commits": table,
        },
    )
    sizes = args.sizes.split(",")
    say(f"{'answers':>8} " + " ".join(f"{c:>20}" for c in table))
    for size in sizes:
        cells = []
        for result in table.values():
            seconds = result["sizes"][size]["seconds"]
            cells.append(f"{seconds:>7.2f} s ({seconds * 10_000 / int(size):.2f}/10k)")
        say(f"{int(size):>8} " + " ".join(f"{c:>20}" for c in cells))
    if len(table) == 2:
        (old, new) = table.values()
        for size in sizes:
            ratio = new["sizes"][size]["seconds"] / old["sizes"][size]["seconds"]
            say(f"  {size}: {ratio:.2f}x the first commit's time")
    say(f"results: {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

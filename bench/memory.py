"""Worker recycling: what a restart costs, and whether a worker's memory grows.

    .venv/bin/python bench/memory.py [--duration 60] [--connections 16]

Gunicorn recycles a worker after ``GUNICORN_MAX_REQUESTS`` requests, a guard
against a slow leak that costs a worker start each time. This measures both
sides of that trade on the intake:

1. Starts gunicorn with ``gunicorn.conf.py`` and one worker, recycling off
   (``GUNICORN_MAX_REQUESTS=0``), on ``webhooks_bench_memory``.
2. The cost of a restart: the CPU seconds a new worker uses from its fork
   until it answers (``tree_cpu`` of the master before a worker is stopped
   and after its replacement answers), median of 3.
3. The leak: drives ``wrk`` with fresh deliveries for ``--duration`` seconds
   while sampling the worker's resident memory (``VmRSS``) every second;
   reports it after the first quarter of the run (warm: gunicorn starts its
   32 threads as requests come) and at the end, and the growth per 10,000
   requests in between.

Writes ``bench/results/memory.json``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    ROOT,
    database_url,
    median,
    say,
    write_results,
)
from bench.cpu import tree_cpu
from bench.intake import (
    INTAKE_PATH,
    deliveries_write,
    intake_prepare,
    wrk_binary,
    wrk_run,
)
from bench.soak import Gunicorn, free_port


def rss_kib(pid: int) -> int | None:
    try:
        for line in (Path("/proc") / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def restart_cost(server: Gunicorn) -> float:
    """CPU seconds of one worker start: stop the worker, wait for its replacement."""
    (old,) = server.worker_pids()
    before = tree_cpu(server.process.pid)
    os.kill(old, signal.SIGTERM)
    replaced = server.wait_workers(without=old)
    if replaced is None:
        raise RuntimeError("the worker was not replaced")
    server.wait_ready(path=INTAKE_PATH)
    time.sleep(0.5)  # its first request (wait_ready's GET) is done
    return tree_cpu(server.process.pid) - before


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=60)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--database-url", default=database_url("webhooks_bench_memory"))
    args = parser.parse_args(argv)
    wrk_binary()
    secret = intake_prepare(args.database_url)
    work = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    server = Gunicorn(
        database_url=args.database_url,
        port=free_port(),
        workers=1,
        conn_max_age=None,
        log_path=work / "gunicorn.log",
        extra_env={"GUNICORN_MAX_REQUESTS": "0"},
    )
    samples: list[tuple[float, int]] = []
    try:
        server.wait_ready(path=INTAKE_PATH)
        costs = [restart_cost(server) for _ in range(3)]
        say(f"worker start: {', '.join(f'{c:.3f}' for c in costs)} CPU s")
        (worker,) = server.worker_pids()
        file = work / "deliveries.tsv"
        deliveries_write(file, count=800 * args.duration, secret=secret, tag="memory")
        stop = threading.Event()

        def sample() -> None:
            started = time.monotonic()
            while not stop.wait(1.0):
                rss = rss_kib(worker)
                if rss is not None:
                    samples.append((time.monotonic() - started, rss))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        measured = wrk_run(
            port=server.port,
            path=INTAKE_PATH,
            deliveries=file,
            connections=args.connections,
            duration=args.duration,
        )
        stop.set()
        sampler.join()
        still = server.worker_pids() == [worker]
    finally:
        server.stop()
    requests = measured["requests"]
    rate = requests / args.duration
    warm_index = max(len(samples) // 4, 1)
    warm_at, warm_rss = samples[warm_index]
    end_at, end_rss = samples[-1]
    per_10k = (end_rss - warm_rss) / max((end_at - warm_at) * rate, 1) * 10_000
    result: dict[str, Any] = {
        "command": "bench/memory.py " + " ".join(argv or sys.argv[1:]),
        "restart_cpu_s": [round(c, 3) for c in costs],
        "restart_cpu_s_median": round(median(costs), 3),
        "requests": requests,
        "errors": measured["errors"],
        "same_worker_throughout": still,
        "rss_kib_warm": warm_rss,
        "rss_kib_end": end_rss,
        "rss_kib_growth_per_10k_requests": round(per_10k, 1),
        "rss_samples": samples,
    }
    path = write_results("memory", result)
    cost = median(costs)
    say(
        f"a worker start costs {cost:.3f} CPU s: every 1,000 requests that is "
        f"{cost / 1000 * 1000:.3f} ms per request, every 20,000 {cost / 20000 * 1000:.4f} ms"
    )
    say(
        f"{requests:,} requests ({measured['errors']} errors) on one worker, never "
        f"recycled ({'same pid throughout' if still else 'the worker was replaced!'}): "
        f"RSS {warm_rss / 1024:.1f} MiB warm -> {end_rss / 1024:.1f} MiB at the end, "
        f"{per_10k / 1024:+.2f} MiB per 10,000 requests"
    )
    say(f"results: {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Handlers that wait: throughput, latency and PostgreSQL connections under gunicorn.

    .venv/bin/python bench/slow.py [--levels 16,64] [--duration 10] [--runs 3]
        [--env NAME=VALUE ...] [--database-url URL]

1. Drops and recreates ``webhooks_bench_slow`` (the name must contain
   "bench"), migrates it and creates the bot ``bench``.
2. Starts gunicorn with ``gunicorn.conf.py`` **as configured by default**
   (its workers, threads and the settings' database pool; ``--env`` changes
   one for a comparison) on a free loopback port.
3. For each run, handler and level, drives ``wrk`` with fresh signed
   deliveries to ``bench-wait-sync`` (``def handle``: ``time.sleep(0.2)``)
   and ``bench-wait-async`` (``async def handle``: ``asyncio.sleep(0.2)``),
   both in ``bench/webhook_handlers.py``, while a thread samples
   ``pg_stat_activity`` every 50 ms: the connections open to the database,
   how many are busy (running a query, or idle inside a transaction), and
   how many have been busy for over 100 ms, which only a connection held
   across a handler's 200 ms wait can be.
4. Reports requests/s beside the ceiling (connections / 0.2 s), latency,
   errors, CPU per request (``bench/cpu.py``) and the connection figures
   (medians over runs; connection maxima are the largest seen), and checks
   every stored event is ``processed``.

Targets (issue 12): at 64 connections >= 250 req/s with p99 < 500 ms for
both kinds, no connection busy while a handler waits, at most 40 PostgreSQL
connections open. Writes ``bench/results/slow.json``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
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
from bench.cpu import CpuMeter, PostgresBackends
from bench.intake import (
    INTAKE_PATH,
    deliveries_write,
    intake_prepare,
    measured_run,
    stored_statuses,
    wrk_binary,
)
from bench.soak import Gunicorn, free_port
from bench.webhook_handlers import WAIT_SECONDS

HANDLERS = {"sync": "bench-wait-sync", "async": "bench-wait-async"}
#: A connection busy this long is one held across a handler's wait.
HELD_MS = 100
TARGET_RPS, TARGET_P99_MS, TARGET_CONNECTIONS = 250, 500, 40


class ConnectionSampler:
    """Samples ``pg_stat_activity`` for one database every ``interval`` seconds."""

    QUERY = """
        SELECT count(*),
               count(*) FILTER (WHERE state IN ('active', 'idle in transaction')),
               count(*) FILTER (
                   WHERE state IN ('active', 'idle in transaction')
                   AND now() - coalesce(xact_start, query_start)
                       > make_interval(secs => %s / 1000.0))
        FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid()
    """

    HELD = """
        SELECT state, left(query, 120), round(extract(epoch FROM
               now() - coalesce(xact_start, query_start)) * 1000)::int, wait_event
        FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid()
        AND state IN ('active', 'idle in transaction')
        AND now() - coalesce(xact_start, query_start) > make_interval(secs => %s / 1000.0)
    """

    def __init__(self, url: str, interval: float = 0.05) -> None:
        self.url, self.interval = url, interval
        self.samples: list[tuple[int, int, int]] = []
        #: A few of the connections found busy too long: what they were doing.
        self.held_examples: list[tuple[str, str, int, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self._stop.wait(self.interval):
                row = conn.execute(self.QUERY, [HELD_MS]).fetchone()
                self.samples.append(tuple(row))  # type: ignore[arg-type]
                if row[2] and len(self.held_examples) < 5:
                    self.held_examples += conn.execute(self.HELD, [HELD_MS]).fetchall()

    def __enter__(self) -> ConnectionSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict[str, Any]:
        if not self.samples:
            return {"samples": 0}
        opened, busy, held = zip(*self.samples, strict=True)
        return {
            "samples": len(self.samples),
            "open_max": max(opened),
            "busy_max": max(busy),
            "busy_mean": round(sum(busy) / len(busy), 2),
            "held_max": max(held),
            "held_examples": self.held_examples[:5],
        }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", default="16,64", help="Connections per level.")
    parser.add_argument("--duration", type=int, default=10, help="Seconds per run.")
    parser.add_argument("--runs", type=int, default=3, help="Runs per level; medians.")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="An environment variable for gunicorn, to compare a configuration "
        "with the default (GUNICORN_THREADS=1...); repeatable.",
    )
    parser.add_argument(
        "--database-url",
        default=database_url("webhooks_bench_slow"),
        help="Dropped and recreated; the name must contain 'bench'.",
    )
    parser.add_argument("--output", default="slow", help="Results file name.")
    return parser.parse_args(argv)


def table(results: dict[str, Any]) -> list[str]:
    lines = [
        f"{'handler':<7} {'conns':>5} {'req/s':>7} {'ceiling':>7} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'errors':>6} {'CPU ms/req':>10} {'PG open':>7} "
        f"{'busy':>5} {'held':>5}"
    ]
    for kind, levels in results.items():
        for level, s in levels.items():
            lines.append(
                f"{kind:<7} {level:>5} {s['rps']:>7.1f} {s['ceiling']:>7.0f} "
                f"{s['p50_ms']:>7.1f} {s['p99_ms']:>7.1f} {s['errors']:>6} "
                f"{s['cpu_ms']:>10.2f} {s['pg']['open_max']:>7} "
                f"{s['pg']['busy_max']:>5} {s['pg']['held_max']:>5}"
            )
    return lines


def verdicts(results: dict[str, Any], top: str) -> list[str]:
    lines = []
    for kind, levels in results.items():
        s = levels.get(top)
        if s is None:
            continue
        met = s["rps"] >= TARGET_RPS and s["p99_ms"] < TARGET_P99_MS
        lines.append(
            f"{kind} at {top} connections: {s['rps']:.0f} req/s (target >= {TARGET_RPS}), "
            f"p99 {s['p99_ms']:.0f} ms (< {TARGET_P99_MS}): {'met' if met else 'NOT met'}"
        )
    opened = max(s["pg"]["open_max"] for lv in results.values() for s in lv.values())
    held = max(s["pg"]["held_max"] for lv in results.values() for s in lv.values())
    lines.append(
        f"PostgreSQL connections open at most {opened} (target <= {TARGET_CONNECTIONS}): "
        f"{'met' if opened <= TARGET_CONNECTIONS else 'NOT met'}"
    )
    lines.append(
        f"connections busy over {HELD_MS} ms (held across a wait): at most {held} "
        f"(target 0): {'met' if held == 0 else 'NOT met'}"
    )
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    levels = [int(n) for n in args.levels.split(",")]
    wrk_binary()
    secret = intake_prepare(args.database_url)
    work = Path(tempfile.mkdtemp(prefix="bench-slow-"))
    extra_env = dict(item.split("=", 1) for item in args.env)
    server = Gunicorn(
        database_url=args.database_url,
        port=free_port(),
        workers=None,  # gunicorn.conf.py's default, unless --env says otherwise
        conn_max_age=None,
        log_path=work / "gunicorn.log",
        extra_env=extra_env,
    )
    runs: dict[str, dict[int, list[dict[str, Any]]]] = {
        kind: {level: [] for level in levels} for kind in HANDLERS
    }
    try:
        server.wait_ready(path=INTAKE_PATH)
        say(f"gunicorn on 127.0.0.1:{server.port}, {server.config_line()}")
        meter = CpuMeter(
            server=server.process.pid, postgres=PostgresBackends(args.database_url)
        )
        warm = work / "warm.tsv"
        for kind, handler in HANDLERS.items():
            deliveries_write(
                warm, count=400, secret=secret, tag=f"warm-{kind}", handler=handler
            )
            measured_run(
                meter=meter,
                port=server.port,
                path=INTAKE_PATH,
                deliveries=warm,
                connections=16,
                duration=2,
            )
        for run in range(args.runs):
            for kind, handler in HANDLERS.items():
                for level in levels:
                    file = work / f"run{run}-{kind}-c{level}.tsv"
                    ceiling = level / WAIT_SECONDS
                    deliveries_write(
                        file,
                        count=int(ceiling * args.duration * 1.2) + 100,
                        secret=secret,
                        tag=f"r{run}{kind}c{level}",
                        handler=handler,
                    )
                    with ConnectionSampler(args.database_url) as sampler:
                        measured = measured_run(
                            meter=meter,
                            port=server.port,
                            path=INTAKE_PATH,
                            deliveries=file,
                            connections=level,
                            duration=args.duration,
                        )
                    measured["pg"] = sampler.summary()
                    runs[kind][level].append(measured)
                    say(
                        f"  run {run + 1}/{args.runs} {kind:<5} c={level:<3} "
                        f"{measured['rps']:>6.1f} req/s (ceiling {ceiling:.0f})  "
                        f"p99 {measured['p99_ms']:.0f} ms  CPU {measured['cpu_ms']:.2f} ms/req  "
                        f"PG open {measured['pg'].get('open_max')} "
                        f"held {measured['pg'].get('held_max')}  errors {measured['errors']}"
                    )
    finally:
        server.stop()
    statuses = stored_statuses()
    results: dict[str, Any] = {}
    for kind, by_level in runs.items():
        results[kind] = {}
        for level, measured in by_level.items():
            results[kind][str(level)] = {
                "rps": median([m["rps"] for m in measured]),
                "ceiling": level / WAIT_SECONDS,
                "p50_ms": median([m["p50_ms"] for m in measured]),
                "p99_ms": median([m["p99_ms"] for m in measured]),
                "errors": sum(m["errors"] for m in measured),
                "cpu_ms": median([m["cpu_ms"] for m in measured]),
                "pg": {
                    "open_max": max(m["pg"]["open_max"] for m in measured),
                    "busy_max": max(m["pg"]["busy_max"] for m in measured),
                    "held_max": max(m["pg"]["held_max"] for m in measured),
                },
                "raw": measured,
            }
    path = write_results(
        args.output,
        {
            "command": "bench/slow.py " + " ".join(argv or sys.argv[1:]),
            "server": server.config_line(),
            "env": args.env,
            "wait_seconds": WAIT_SECONDS,
            "duration_s": args.duration,
            "runs": args.runs,
            "stored_events_by_status": statuses,
            "results": results,
        },
    )
    say("\n".join(table(results)))
    say("\n".join(verdicts(results, str(max(levels)))))
    say(f"stored events by status: {statuses}")
    say(f"results: {path.relative_to(ROOT)}; gunicorn log: {work / 'gunicorn.log'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Intake throughput and latency under gunicorn on PostgreSQL, beside a floor.

    .venv/bin/python bench/intake.py [--levels 1,16,64] [--duration 10]
        [--runs 3] [--workers N] [--conn-max-age S] [--database-url URL]

1. Drops and recreates ``webhooks_bench_intake`` (the name must contain
   "bench"), migrates it with ``bench.settings`` and creates the bot ``bench``.
2. Starts gunicorn with ``gunicorn.conf.py`` as configured by default
   (cores + 1 workers of 32 threads, the settings' connection pool; ``--workers``
   and ``--env`` change them for a comparison) on a free loopback port.
3. For each run and concurrency level, signs fresh deliveries in advance
   (distinct ids, three answers, a ``body_sha256`` claim, tokens valid for an
   hour) and drives ``wrk`` with ``bench/wrk_post.lua`` for ``--duration``
   seconds at that many connections, first at the real endpoint
   ``/webhooks/bench/`` (handler ``soak-ok``), then at the floor
   ``/bench/floor/`` (``bench/views.py``: one INSERT of the raw body) with the
   same bodies. Intake and floor alternate, so drift on a shared machine hits
   both alike.
4. Reports requests/s, p50/p95/p99 latency, errors and CPU per request per
   target and level (medians over the runs), and the ratios intake/floor of
   throughput and of CPU per request, and checks the database: every stored
   event is ``processed``, one per answered request. CPU per request is the
   user + system time of gunicorn's process tree (master, workers, recycled
   workers included) plus that of the PostgreSQL backends serving the
   database and the server's WAL writer, checkpointer and background
   writer (``bench/cpu.py``), divided by the requests answered: the figure
   that stays put on a shared machine.

Writes ``bench/results/intake.json``.
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

from bench.common import (
    ROOT,
    BenchError,
    database_recreate,
    database_url,
    django_setup,
    manage,
    median,
    sample_delivery,
    say,
    write_results,
)
from bench.cpu import CpuMeter, PostgresBackends
from bench.soak import Gunicorn, free_port

BOT_SLUG = "bench"
HANDLER = "soak-ok"
INTAKE_PATH = f"/webhooks/{BOT_SLUG}/"
FLOOR_PATH = "/bench/floor/"
LUA = ROOT / "bench" / "wrk_post.lua"
#: Deliveries signed per run: more than the fastest target answers in --duration.
PER_SECOND_CEILING = 800


def intake_prepare(url: str) -> str:
    """Recreate and migrate ``url``'s database and create the bot; its secret.

    Leaves Django set up on ``url`` (for ``stored_statuses``)."""
    database_recreate(url)
    manage(url, "migrate", "--noinput")
    django_setup(url)
    from django.db import connection

    from submissions.models import Bot

    bot = Bot.objects.create(name="Bench", slug=BOT_SLUG)
    connection.close()
    return bot.secret


def stored_statuses() -> dict[str, int]:
    """The stored events, counted by status."""
    from django.db.models import Count

    from submissions.models import WebhookEvent

    return dict(WebhookEvent.objects.values_list("status").annotate(n=Count("id")))


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise BenchError("wrk is not installed: sudo apt-get install wrk")
    return found


def deliveries_write(
    path: Path, *, count: int, secret: str, tag: str, handler: str = HANDLER
) -> None:
    """Sign ``count`` deliveries for one run: ``token<TAB>body`` per line, for wrk."""
    from submissions.tokens import sign_token

    with path.open("w") as out:
        for index in range(count):
            _, body = sample_delivery(index, tag=tag, handler=handler)
            token = sign_token(secret, body=body, lifetime_seconds=3600)
            out.write(f"{token}\t{body.decode()}\n")


def wrk_run(
    *,
    port: int,
    path: str,
    deliveries: Path,
    connections: int,
    duration: int,
    header: str = "Authorization",
    prefix: str = "Bearer ",
) -> dict[str, Any]:
    """``wrk`` posting ``deliveries`` (``<credential>\t<body>`` lines), each
    line's credential sent as ``header: <prefix><credential>``."""
    threads = min(connections, 2)
    result = subprocess.run(  # noqa: S603 - wrk from the system, our own script
        [
            wrk_binary(),
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration}s",
            "--timeout",
            "10s",
            "-s",
            str(LUA),
            f"http://127.0.0.1:{port}",
            "--",
            path,
            str(deliveries),
            str(threads),
            header,
            prefix,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        raise BenchError(f"wrk failed:\n{result.stdout}\n{result.stderr}")
    raw = json.loads(lines[-1])
    seconds = raw["duration_us"] / 1e6
    errors = sum(raw[k] for k in ("connect", "read", "write", "status", "timeout"))
    return {
        "requests": raw["requests"],
        "rps": round(raw["requests"] / seconds, 1),
        "p50_ms": raw["p50_us"] / 1000,
        "p95_ms": raw["p95_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "errors": errors,
        "error_kinds": {
            k: raw[k] for k in ("connect", "read", "write", "status", "timeout")
        },
        "wrapped": raw["wrapped"],
    }


def measured_run(
    *,
    meter: CpuMeter,
    port: int,
    path: str,
    deliveries: Path,
    connections: int,
    duration: int,
) -> dict[str, Any]:
    """``wrk_run`` with the CPU the server and PostgreSQL spent on it, per request."""
    meter.start()
    measured = wrk_run(
        port=port,
        path=path,
        deliveries=deliveries,
        connections=connections,
        duration=duration,
    )
    cpu = meter.stop()
    requests = max(measured["requests"], 1)
    measured["cpu_s"] = cpu
    for label, seconds in cpu.items():
        measured[f"cpu_ms_{label}"] = round(seconds * 1000 / requests, 3)
    measured["cpu_ms"] = round(sum(cpu.values()) * 1000 / requests, 3)
    return measured


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "rps": median([r["rps"] for r in runs]),
        "cpu_ms": median([r["cpu_ms"] for r in runs]),
        "cpu_ms_server": median([r["cpu_ms_server"] for r in runs]),
        "cpu_ms_postgres": median([r.get("cpu_ms_postgres", 0.0) for r in runs]),
        "p50_ms": median([r["p50_ms"] for r in runs]),
        "p95_ms": median([r["p95_ms"] for r in runs]),
        "p99_ms": median([r["p99_ms"] for r in runs]),
        "errors": sum(r["errors"] for r in runs),
        "requests": sum(r["requests"] for r in runs),
        "runs": len(runs),
    }


def table(levels: dict[str, Any]) -> list[str]:
    lines = [
        f"{'conns':>5}  {'target':<6} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} "
        f"{'p99 ms':>8} {'errors':>6} {'CPU ms/req':>10} {'(server':>8} {'+ pg)':>6}"
        "  intake/floor: req/s, CPU"
    ]
    for level, by_target in levels.items():
        for target in ("intake", "floor"):
            s = by_target[target]
            ratio = (
                f"{by_target['ratio']:.0%}, {by_target['cpu_ratio']:.2f}x"
                if target == "intake"
                else ""
            )
            lines.append(
                f"{level:>5}  {target:<6} {s['rps']:>8.1f} {s['p50_ms']:>8.1f} "
                f"{s['p95_ms']:>8.1f} {s['p99_ms']:>8.1f} {s['errors']:>6} "
                f"{s['cpu_ms']:>10.2f} {s['cpu_ms_server']:>8.2f} "
                f"{s['cpu_ms_postgres']:>6.2f}  {ratio}"
            )
    return lines


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", default="1,16,64", help="Connections per level.")
    parser.add_argument("--duration", type=int, default=10, help="Seconds per run.")
    parser.add_argument("--runs", type=int, default=3, help="Runs per level; medians.")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="gunicorn workers (default: gunicorn.conf.py's, cores + 1).",
    )
    parser.add_argument(
        "--conn-max-age",
        type=int,
        default=None,
        help="DJANGO_CONN_MAX_AGE for gunicorn (default: the settings' default).",
    )
    parser.add_argument(
        "--database-url",
        default=database_url("webhooks_bench_intake"),
        help="Dropped and recreated; the name must contain 'bench'.",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="An environment variable for gunicorn (GUNICORN_THREADS=16, "
        "DJANGO_DB_POOL=true...); repeatable.",
    )
    parser.add_argument("--output", default="intake", help="Results file name.")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    levels = [int(n) for n in args.levels.split(",")]
    wrk_binary()
    secret = intake_prepare(args.database_url)
    work = Path(tempfile.mkdtemp(prefix="bench-intake-"))
    server = Gunicorn(
        database_url=args.database_url,
        port=free_port(),
        workers=args.workers,
        conn_max_age=args.conn_max_age,
        log_path=work / "gunicorn.log",
        extra_env=dict(item.split("=", 1) for item in args.env),
    )
    results: dict[int, dict[str, list[dict[str, Any]]]] = {
        level: {"intake": [], "floor": []} for level in levels
    }
    count = PER_SECOND_CEILING * args.duration
    try:
        server.wait_ready(path=INTAKE_PATH)
        say(f"gunicorn on 127.0.0.1:{server.port}: {server.config_line()}")
        warm = work / "warm.tsv"
        deliveries_write(
            warm,
            count=2000,
            secret=secret,
            tag="warm",
        )
        for path in (INTAKE_PATH, FLOOR_PATH):  # fill caches, open connections
            wrk_run(
                port=server.port, path=path, deliveries=warm, connections=8, duration=2
            )
        meter = CpuMeter(
            server=server.process.pid, postgres=PostgresBackends(args.database_url)
        )
        for run in range(args.runs):
            for level in levels:
                file = work / f"run{run}-c{level}.tsv"
                deliveries_write(
                    file,
                    count=count,
                    secret=secret,
                    tag=f"r{run}c{level}",
                )
                for target, path in (("intake", INTAKE_PATH), ("floor", FLOOR_PATH)):
                    measured = measured_run(
                        meter=meter,
                        port=server.port,
                        path=path,
                        deliveries=file,
                        connections=level,
                        duration=args.duration,
                    )
                    results[level][target].append(measured)
                    say(
                        f"  run {run + 1}/{args.runs} c={level:<3} {target:<6} "
                        f"{measured['rps']:>7.1f} req/s  p99 {measured['p99_ms']:.1f} ms  "
                        f"CPU {measured['cpu_ms']:.2f} ms/req  "
                        f"errors {measured['errors']}"
                    )
    finally:
        server.stop()
    statuses = stored_statuses()
    levels_out: dict[str, Any] = {}
    for level, by_target in results.items():
        intake, floor = summarise(by_target["intake"]), summarise(by_target["floor"])
        levels_out[str(level)] = {
            "intake": intake,
            "floor": floor,
            "ratio": round(intake["rps"] / floor["rps"], 3) if floor["rps"] else None,
            "cpu_ratio": round(intake["cpu_ms"] / floor["cpu_ms"], 3)
            if floor["cpu_ms"]
            else None,
            "raw": by_target,
        }
    path = write_results(
        args.output,
        {
            "command": "bench/intake.py " + " ".join(argv or sys.argv[1:]),
            "workers": server.workers,
            "server": server.config_line(),
            "conn_max_age": args.conn_max_age,
            "env": args.env,
            "duration_s": args.duration,
            "runs": args.runs,
            "stored_events_by_status": statuses,
            "levels": levels_out,
        },
    )
    say("\n".join(table(levels_out)))
    say(f"stored events by status: {statuses}")
    say(f"results: {path.relative_to(ROOT)}; gunicorn log: {work / 'gunicorn.log'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Our intake beside a peer, dj-stripe's webhook view: throughput and CPU per request.

    .venv/bin/python bench/peer.py [--levels 16] [--duration 10] [--runs 3]
        [--workers N] [--database-url URL] [--peer-database-url URL]

1. On first run (or when ``bench/peer_djstripe/requirements.txt`` changes)
   builds the peer's own virtualenv, ``bench/peer_djstripe/.venv``, and
   installs that file there; the project's venv is never touched.
2. Ours, as ``bench/intake.py`` sets it up, in its own database
   (``webhooks_bench_peer_intake``, so a concurrent ``bench/intake.py`` does
   not drop it mid-run): recreated and migrated, the bot ``bench``, handler
   ``soak-ok``.
3. The peer (``bench/peer_djstripe/``): ``webhooks_bench_djstripe``
   recreated and migrated, then the rows a deployed dj-stripe has: its Stripe
   account, secret API key and webhook endpoint (``seed.py setup``).
4. Both served at once by gunicorn with the same ``gunicorn.conf.py`` and
   its defaults (cores + 1 workers of 32 threads, unless ``--workers``), each
   with a connection pool of the same size, on its own loopback port and the
   same PostgreSQL server.
5. For each run and level, deliveries are signed beforehand (ours: JWTs as in
   ``bench/intake.py``; theirs: ``balance.available`` events with a
   ``Stripe-Signature`` header, distinct ids) and ``wrk`` drives each target
   for ``--duration`` seconds, ours and theirs alternately (the order swaps
   each run). Around each, ``bench/cpu.py`` reads the CPU of that server's
   process tree and of PostgreSQL: CPU per request is that over the requests
   the run completed. The machine's busy time less those and wrk's is what
   everything else used ("others", as a share of the machine): near zero
   on a quiet machine.
6. Reports medians per target and level, the ratios ours/theirs of
   throughput and of CPU per request (also pooled over all runs: a worker
   recycled by ``max_requests`` boots Django again mid-run, which a median
   may leave out), the worker restarts, and checks: every event of ours is
   ``processed`` (but the readiness probe's GETs, rejected with 405), at
   least one per answered request; every trigger of theirs valid and processed with its
   Event and no exception; no "Request to Stripe api" in the peer's log; a
   ``product.updated`` delivery (whose handler calls Stripe) fails on the
   closed API port. Records the SQL of one peer delivery.

Writes ``bench/results/peer.json``; exits 1 if a check fails.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    ROOT,
    BenchError,
    database_recreate,
    database_url,
    median,
    sample_delivery,
    say,
    write_results,
)
from bench.cpu import CpuMeter, PostgresBackends, machine_busy
from bench.intake import (
    HANDLER,
    INTAKE_PATH,
    PER_SECOND_CEILING,
    deliveries_write,
    intake_prepare,
    stored_statuses,
    summarise,
    wrk_binary,
    wrk_run,
)
from bench.peer_djstripe.stripe_wire import (
    EVENT_TYPE,
    balance_available_event,
    stripe_signature,
)
from bench.soak import Gunicorn, free_port

PEER = ROOT / "bench" / "peer_djstripe"
PEER_VENV = PEER / ".venv"
PEER_PYTHON = PEER_VENV / "bin" / "python"
PEER_SETTINGS = "bench.peer_djstripe.settings"
PEER_APP = "bench.peer_djstripe.wsgi:application"
OURS, THEIRS = "ours", "dj-stripe"
#: What stripe-python logs before each API request it makes.
STRIPE_REQUEST_LOG = "Request to Stripe api"


def peer_python() -> Path:
    """The peer venv's interpreter, building the venv if it is missing or
    older than ``requirements.txt``."""
    requirements = PEER / "requirements.txt"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    stamp = PEER_VENV / "requirements.sha256"
    if PEER_PYTHON.exists() and stamp.exists() and stamp.read_text() == digest:
        return PEER_PYTHON
    say(f"building {PEER_VENV.relative_to(ROOT)} from {requirements.name}")
    for command in (
        [sys.executable, "-m", "venv", "--clear", str(PEER_VENV)],
        [
            str(PEER_PYTHON),
            *("-m", "pip", "install", "--quiet", "--disable-pip-version-check"),
            *("-r", str(requirements)),
        ],
    ):
        result = subprocess.run(  # noqa: S603 - our interpreters, pinned file
            command, capture_output=True, text=True, check=False
        )
        if result.returncode:
            raise BenchError(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    stamp.write_text(digest)
    return PEER_PYTHON


def peer_run(url: str, *args: str) -> str:
    """``args`` run by the peer's interpreter on ``url``; its stdout."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": PEER_SETTINGS, "DATABASE_URL": url}
    result = subprocess.run(  # noqa: S603 - the peer's interpreter, our modules
        [str(peer_python()), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode:
        raise BenchError(f"peer {' '.join(args)} failed:\n{result.stderr[-2000:]}")
    return result.stdout


def peer_seed(url: str, command: str) -> dict[str, Any]:
    return json.loads(peer_run(url, "-m", "bench.peer_djstripe.seed", command))


def peer_prepare(url: str) -> dict[str, str]:
    """Recreate, migrate and seed the peer's database: its endpoint's
    ``path`` and signing ``secret``."""
    database_recreate(url)
    peer_run(url, "-m", "django", "migrate", "--noinput")
    return peer_seed(url, "setup")


def stripe_deliveries_write(path: Path, *, count: int, secret: str, tag: str) -> None:
    """``count`` signed ``balance.available`` deliveries, ``signature<TAB>body``."""
    now = int(time.time())
    with path.open("w") as out:
        for index in range(count):
            body = balance_available_event(
                f"evt_{tag}{index:07d}", created=now, amount=index + 1
            )
            signature = stripe_signature(secret, body, timestamp=now)
            out.write(f"{signature}\t{body.decode()}\n")


class Target:
    """One server under test: how to sign its deliveries and measure it."""

    def __init__(
        self, name: str, server: Gunicorn, path: str, secret: str, *, stripe: bool
    ):
        self.name, self.server, self.path = name, server, path
        self.secret, self.stripe = secret, stripe

    def deliveries(self, path: Path, *, count: int, tag: str) -> Path:
        write = stripe_deliveries_write if self.stripe else deliveries_write
        write(path, count=count, secret=self.secret, tag=tag)
        return path

    def drive(
        self, deliveries: Path, *, connections: int, duration: int
    ) -> dict[str, Any]:
        header = (
            ("Stripe-Signature", "") if self.stripe else ("Authorization", "Bearer ")
        )
        meter = CpuMeter(
            server=self.server.process.pid,
            postgres=PostgresBackends(self.server.database_url),
        )
        busy, children = machine_busy(), _children_cpu()
        meter.start()
        measured = wrk_run(
            port=self.server.port,
            path=self.path,
            deliveries=deliveries,
            connections=connections,
            duration=duration,
            header=header[0],
            prefix=header[1],
        )
        cpu = meter.stop()
        busy, wrk = machine_busy() - busy, _children_cpu() - children
        done = max(measured["requests"], 1)
        measured["cpu_ms_per_request"] = {
            "server": round(cpu["server"] * 1000 / done, 3),
            "postgres": round(cpu.get("postgres", 0.0) * 1000 / done, 3),
            "total": round(sum(cpu.values()) * 1000 / done, 3),
        }
        # The keys bench/intake.py's summarise() reads.
        measured["cpu_ms"] = measured["cpu_ms_per_request"]["total"]
        measured["cpu_ms_server"] = measured["cpu_ms_per_request"]["server"]
        measured["cpu_ms_postgres"] = measured["cpu_ms_per_request"]["postgres"]
        # What the rest of the machine used meanwhile: near 0 on a quiet one.
        others = busy - sum(cpu.values()) - wrk
        cpu.update(wrk=round(wrk, 3), machine=round(busy, 3), others=round(others, 3))
        measured["cpu_s"] = cpu
        measured["others_share"] = round(others / (duration * (os.cpu_count() or 1)), 3)
        return measured


def _children_cpu() -> float:
    """CPU seconds of this process's waited-for children (wrk, once it ran)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out = summarise(runs)
    out["cpu_ms_per_request"] = {
        part: median([r["cpu_ms_per_request"][part] for r in runs])
        for part in ("server", "postgres", "total")
    }
    # Over all runs: a gunicorn worker recycled (max_requests) mid-run boots
    # Django again, which the median may leave out and this does not.
    requests = sum(r["requests"] for r in runs) or 1
    out["cpu_ms_per_request_pooled"] = round(
        sum(r["cpu_s"]["server"] + r["cpu_s"].get("postgres", 0.0) for r in runs)
        * 1000
        / requests,
        3,
    )
    out["others_share"] = median([r["others_share"] for r in runs])
    return out


def table(levels: dict[str, Any]) -> list[str]:
    lines = [
        f"{'conns':>5}  {'target':<9} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'errors':>6}  {'CPU ms/req: server':>18} {'pg':>5} {'total':>6} "
        f"{'others':>6}"
    ]
    for level, by_target in levels.items():
        for name in (OURS, THEIRS):
            s = by_target[name]
            cpu = s["cpu_ms_per_request"]
            lines.append(
                f"{level:>5}  {name:<9} {s['rps']:>8.1f} {s['p50_ms']:>7.1f} "
                f"{s['p99_ms']:>7.1f} {s['errors']:>6}  {cpu['server']:>18.2f} "
                f"{cpu['postgres']:>5.2f} {cpu['total']:>6.2f} "
                f"{s['others_share']:>6.0%}"
            )
        lines.append(
            f"{level:>5}  ours/dj-stripe: throughput {by_target['throughput_ratio']:.2f}x "
            f"(target >= 2x), CPU per request {by_target['cpu_ratio']:.2f}x "
            f"(over all runs, worker restarts included: "
            f"{by_target['cpu_ratio_pooled']:.2f}x)"
        )
    return lines


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", default="16", help="Connections per level.")
    parser.add_argument("--duration", type=int, default=10, help="Seconds per run.")
    parser.add_argument("--runs", type=int, default=3, help="Runs per level; medians.")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="gunicorn workers for both (default: gunicorn.conf.py's, cores + 1 "
        "of 32 threads).",
    )
    # Not intake.py's database: a concurrent bench/intake.py would drop it
    # under this run (it did once, on this shared machine).
    parser.add_argument(
        "--database-url",
        default=database_url("webhooks_bench_peer_intake"),
        help="Ours; dropped and recreated; the name must contain 'bench'.",
    )
    parser.add_argument(
        "--peer-database-url",
        default=database_url("webhooks_bench_djstripe"),
        help="dj-stripe's; dropped and recreated; the name must contain 'bench'.",
    )
    parser.add_argument("--output", default="peer", help="Results file name.")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    levels = [int(n) for n in args.levels.split(",")]
    wrk_binary()
    load_before = os.getloadavg()
    ours_url, peer_url = args.database_url, args.peer_database_url
    peer_python()
    ours_secret = intake_prepare(ours_url)
    endpoint = peer_prepare(peer_url)
    work = Path(tempfile.mkdtemp(prefix="bench-peer-"))
    servers = {
        OURS: Gunicorn(
            database_url=ours_url,
            port=free_port(),
            workers=args.workers,
            conn_max_age=None,
            log_path=work / "ours.log",
        ),
        THEIRS: Gunicorn(
            database_url=peer_url,
            port=free_port(),
            workers=args.workers,
            conn_max_age=None,
            log_path=work / "djstripe.log",
            settings_module=PEER_SETTINGS,
            python=str(PEER_PYTHON),
            app=PEER_APP,
        ),
    }
    targets = [
        Target(OURS, servers[OURS], INTAKE_PATH, ours_secret, stripe=False),
        Target(
            THEIRS, servers[THEIRS], endpoint["path"], endpoint["secret"], stripe=True
        ),
    ]
    results: dict[int, dict[str, list[dict[str, Any]]]] = {
        level: {OURS: [], THEIRS: []} for level in levels
    }
    answered = {OURS: 0, THEIRS: 0}
    count = PER_SECOND_CEILING * args.duration
    try:
        for target in targets:
            target.server.wait_ready(path=target.path)
        say(
            f"gunicorn: {servers[OURS].config_line()} each; ours on :{servers[OURS].port} "
            f"({INTAKE_PATH}, handler {HANDLER}), dj-stripe on :{servers[THEIRS].port} "
            f"({endpoint['path']}, {EVENT_TYPE})"
        )
        for target in targets:  # fill caches, open connections
            warm = target.deliveries(
                work / f"warm-{target.name}.tsv", count=2000, tag="warm"
            )
            measured = target.drive(warm, connections=8, duration=2)
            answered[target.name] += measured["requests"] - measured["errors"]
        for run in range(args.runs):
            order = targets if run % 2 == 0 else targets[::-1]
            for level in levels:
                for target in order:
                    file = target.deliveries(
                        work / f"{target.name}-run{run}-c{level}.tsv",
                        count=count,
                        tag=f"r{run}c{level}",
                    )
                    measured = target.drive(
                        file, connections=level, duration=args.duration
                    )
                    results[level][target.name].append(measured)
                    answered[target.name] += measured["requests"] - measured["errors"]
                    say(
                        f"  run {run + 1}/{args.runs} c={level:<3} {target.name:<9} "
                        f"{measured['rps']:>7.1f} req/s  p99 {measured['p99_ms']:.1f} ms  "
                        f"errors {measured['errors']}  "
                        f"CPU {measured['cpu_ms_per_request']['total']:.2f} ms/req  "
                        f"others {measured['others_share']:.0%} of the machine"
                    )
    finally:
        for server in servers.values():
            server.stop()
    load_after = os.getloadavg()

    statuses = stored_statuses()
    peer_check = peer_seed(peer_url, "check")
    api_requests = (work / "djstripe.log").read_text().count(STRIPE_REQUEST_LOG)
    restarts = {
        name: server.log_path.read_text().count("Booting worker") - server.workers
        for name, server in servers.items()
    }
    peer_sql = peer_seed(peer_url, "sql")
    trap = peer_seed(peer_url, "trap")
    failures = []
    # The readiness probe's GETs are stored as rejected (405), as in intake.py.
    if (
        set(statuses) - {"processed", "rejected"}
        or statuses.get("processed", 0) < answered[OURS]
    ):
        failures.append(f"ours: stored {statuses}, answered {answered[OURS]}")
    if not (
        peer_check["triggers"] == peer_check["valid_processed"] == peer_check["events"]
        and peer_check["triggers"] >= answered[THEIRS]
        and peer_check["event_types"] == [EVENT_TYPE]
    ):
        failures.append(f"dj-stripe: stored {peer_check}, answered {answered[THEIRS]}")
    if api_requests:
        failures.append(f"dj-stripe called the Stripe API {api_requests} times")
    if peer_sql["status"] != 200:
        failures.append(f"dj-stripe SQL probe answered {peer_sql['status']}")
    if trap["status"] != 500 or "Network error" not in (trap["exception"] or ""):
        failures.append(f"the Stripe API trap did not spring: {trap}")

    levels_out: dict[str, Any] = {}
    for level, by_target in results.items():
        ours, theirs = summary(by_target[OURS]), summary(by_target[THEIRS])
        levels_out[str(level)] = {
            OURS: ours,
            THEIRS: theirs,
            "throughput_ratio": round(ours["rps"] / theirs["rps"], 3),
            "cpu_ratio_pooled": round(
                ours["cpu_ms_per_request_pooled"] / theirs["cpu_ms_per_request_pooled"],
                3,
            ),
            "cpu_ratio": round(
                ours["cpu_ms_per_request"]["total"]
                / theirs["cpu_ms_per_request"]["total"],
                3,
            ),
            "raw": by_target,
        }
    path = write_results(
        args.output,
        {
            "command": "bench/peer.py " + " ".join(argv or sys.argv[1:]),
            "workers": servers[OURS].workers,
            "server": servers[OURS].config_line(),
            "duration_s": args.duration,
            "runs": args.runs,
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in load_after],
            "peer_requirements": [
                line
                for line in (PEER / "requirements.txt").read_text().splitlines()
                if line and not line.startswith("#")
            ],
            "event_type": EVENT_TYPE,
            "body_bytes": {
                OURS: len(sample_delivery(0, tag="r0c16", handler=HANDLER)[1]),
                THEIRS: len(
                    balance_available_event("evt_r0c160000000", created=0, amount=1)
                ),
            },
            "checks": {
                "ours_stored_events_by_status": statuses,
                "ours_answered": answered[OURS],
                "djstripe_stored": peer_check,
                "djstripe_answered": answered[THEIRS],
                "djstripe_stripe_api_requests_logged": api_requests,
                "djstripe_trap": trap,
                "worker_restarts": restarts,
                "failures": failures,
            },
            "djstripe_sql_of_one_delivery": peer_sql,
            "levels": levels_out,
        },
    )
    say("\n".join(table(levels_out)))
    say(f"ours: stored events by status {statuses}, answered {answered[OURS]}")
    say(
        f"dj-stripe: {peer_check['triggers']} triggers, {peer_check['valid_processed']} "
        f"valid and processed, {peer_check['events']} events, answered "
        f"{answered[THEIRS]}; Stripe API requests logged: {api_requests}; "
        f"trap (product.updated): {trap['status']}"
    )
    say(f"gunicorn worker restarts (max_requests): {restarts}")
    say(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    say(f"results: {path.relative_to(ROOT)}; logs: {work}")
    for failure in failures:
        say(f"FAILED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

"""Soak test: gunicorn on PostgreSQL, concurrent signed deliveries, a killed worker.

    .venv/bin/python bench/soak.py [--requests 5000] [--concurrency 32]
        [--workers N] [--database-url postgres://...] [--port P]

1. Drops and recreates the PostgreSQL database (default ``webhooks_soak``; the
   name must contain "soak"), migrates it with ``bench.settings`` and creates
   a bot.
2. Signs N deliveries (distinct ``id``, three form answers, a ``body_sha256``
   claim); every tenth goes to ``soak-fail`` (raises), the rest to ``soak-ok``.
3. Starts gunicorn with ``gunicorn.conf.py`` on a free loopback port and posts
   them from ``--concurrency`` threads. A request whose connection dies is
   retried once with the same body and token.
4. A third of the way through, SIGKILLs one gunicorn worker and waits for the
   master to replace it.
5. Stops gunicorn and checks the database: every answered request has exactly
   one stored original event; a 200 is ``processed`` and a 500 ``failed``,
   both with their submission, answers and handler run; the reply and the
   ``X-Webhook-Event-Id`` header match what is stored; no delivery id is
   stored as an original twice.

Prints the counts and exits 0 when nothing answered was lost, nothing was
duplicated and every stored row agrees with the answer; 1 otherwise.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import BenchError, database_recreate, sample_delivery

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/webhooks_soak"
BOT_SLUG = "soak"
OK_HANDLER, FAIL_HANDLER = "soak-ok", "soak-fail"
FAIL_EVERY = 10  # one delivery in ten goes to the handler that raises
ANSWERS_PER_DELIVERY = 3
# Tokens are signed before the run and reused by retries: outlive any run.
TOKEN_LIFETIME_SECONDS = 3600


def say(line: str = "") -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class SoakError(Exception):
    """The soak could not run (setup, server start); not a finding about the product."""


# --- setup -----------------------------------------------------------------


def django_setup(database_url: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    os.environ["DATABASE_URL"] = database_url
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()


@dataclass
class Attempt:
    retry: bool
    status: int | None = None  # None: no HTTP answer
    error: str = ""
    event_id: int | None = None
    original_event_id: int | None = None
    reply: Any = None


@dataclass
class Delivery:
    delivery_id: str
    handler: str
    body: bytes
    token: str
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def expected_status(self) -> int:
        return 500 if self.handler == FAIL_HANDLER else 200

    @property
    def answer(self) -> Attempt | None:
        """The last attempt that got an HTTP answer."""
        answered = [a for a in self.attempts if a.status is not None]
        return answered[-1] if answered else None


def deliveries_sign(*, count: int, secret: str) -> list[Delivery]:
    from submissions.tokens import sign_token

    deliveries = []
    for index in range(count):
        handler = FAIL_HANDLER if index % FAIL_EVERY == FAIL_EVERY - 1 else OK_HANDLER
        delivery_id, body = sample_delivery(index, tag="soak", handler=handler)
        token = sign_token(secret, body=body, lifetime_seconds=TOKEN_LIFETIME_SECONDS)
        deliveries.append(Delivery(delivery_id, handler, body, token))
    return deliveries


# --- gunicorn ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def live_children(pid: int) -> list[int]:
    """PIDs of the live (not zombie) children of ``pid``, from /proc."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == pid and state != "Z":
            children.append(int(entry.name))
    return sorted(children)


def client_ports(pid: int, port: int) -> set[int]:
    """Client-side ports of the established connections to ``port`` that ``pid`` holds."""
    inodes = set()
    try:
        for fd in (Path("/proc") / str(pid) / "fd").iterdir():
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        return set()
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            established = fields[3] == "01"
            if local_port == port and established and fields[9] in inodes:
                ports.add(int(fields[2].rsplit(":", 1)[1], 16))
    return ports


class Gunicorn:
    def __init__(
        self,
        *,
        database_url: str,
        port: int,
        workers: int | None,
        conn_max_age: int | None,
        log_path: Path,
        settings_module: str = "bench.settings",
        extra_env: dict[str, str] | None = None,
        python: str = sys.executable,
        app: str | None = None,
    ):
        """``workers`` None: gunicorn.conf.py's default (counted once it is up).

        The serving knobs not given in ``extra_env`` are gunicorn.conf.py's
        and the settings' defaults, whatever this process's environment says.
        ``python`` and ``app`` (a WSGI path, over the config's ``wsgi_app``)
        serve another project with the same ``gunicorn.conf.py``: the peer.
        """
        self.port = port
        self.database_url = database_url
        self.workers = workers or 0
        self.log_path = log_path
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("GUNICORN_", "DJANGO_DB_POOL", "WEBHOOK_"))
        }
        env |= {
            "DJANGO_SETTINGS_MODULE": settings_module,
            "DATABASE_URL": database_url,
            "DJANGO_DEBUG": "false",
            "GUNICORN_BIND": f"127.0.0.1:{port}",
        }
        if workers:
            env["GUNICORN_WORKERS"] = str(workers)
        self.extra_env = dict(extra_env or {})
        env.update(self.extra_env)
        env.pop("DJANGO_CONN_MAX_AGE", None)
        if conn_max_age is not None:  # None: the settings' default
            env["DJANGO_CONN_MAX_AGE"] = str(conn_max_age)
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and config
            [
                python,
                "-m",
                "gunicorn",
                "-c",
                str(ROOT / "gunicorn.conf.py"),
                *([app] if app else []),
            ],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def worker_pids(self) -> list[int]:
        return live_children(self.process.pid)

    def wait_ready(self, *, path: str, timeout: float = 30.0) -> None:
        """Until a request answers (GET: 405, nothing stored) and every worker is up."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SoakError(
                    f"gunicorn exited with {self.process.returncode}; see {self.log_path}:\n"
                    + self.log_tail()
                )
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", path)
                status = conn.getresponse().status
                conn.close()
            except OSError:
                status = None
            if (
                status == 405
                and self.workers
                and len(self.worker_pids()) >= self.workers
            ):
                return
            if status == 405 and not self.workers:  # as many as it starts
                before = len(self.worker_pids())
                time.sleep(1.0)
                if len(self.worker_pids()) == before:
                    self.workers = before
                    return
            time.sleep(0.1)
        raise SoakError(
            f"gunicorn did not answer within {timeout:.0f} s; see {self.log_path}."
        )

    def wait_workers(
        self, *, without: int, timeout: float = 30.0
    ) -> tuple[int, float] | None:
        """Wait until the master has replaced ``without``; the new PID and the delay."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            pids = self.worker_pids()
            if without not in pids and len(pids) >= self.workers:
                return max(pids), time.monotonic() - started
            time.sleep(0.05)
        return None

    def config_line(self) -> str:
        """The serving configuration, as a line for a report."""
        given = ", ".join(f"{k}={v}" for k, v in sorted(self.extra_env.items()))
        return f"{self.workers} workers" + (
            f", {given}" if given else ", gunicorn.conf.py and settings defaults"
        )

    def stop(self, *, timeout: float = 40.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                for pid in self.worker_pids():
                    os.kill(pid, signal.SIGKILL)
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])


# --- load ----------------------------------------------------------------


def post(
    port: int,
    path: str,
    delivery: Delivery,
    *,
    retry: bool,
    timeout: float,
    awaiting: set[int],
    lock: threading.Lock,
) -> Attempt:
    """POST one delivery; ``awaiting`` holds the client port while no answer came."""
    attempt = Attempt(retry=retry)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    client_port = None
    try:
        conn.connect()
        client_port = conn.sock.getsockname()[1]
        with lock:
            awaiting.add(client_port)
        conn.request(
            "POST",
            path,
            body=delivery.body,
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {delivery.token}",
            },
        )
        response = conn.getresponse()
        raw = response.read()
    except (OSError, http.client.HTTPException) as exc:
        attempt.error = type(exc).__name__
        return attempt
    finally:
        with lock:
            awaiting.discard(client_port)
        conn.close()
    attempt.status = response.status
    for header, name in (
        ("X-Webhook-Event-Id", "event_id"),
        ("X-Webhook-Original-Event-Id", "original_event_id"),
    ):
        value = response.getheader(header)
        if value and value.isdigit():
            setattr(attempt, name, int(value))
    try:
        attempt.reply = json.loads(raw)
    except ValueError:
        attempt.reply = raw[:200]
    return attempt


@dataclass
class Kill:
    at_answer: int
    pid: int | None = None
    busy: bool = False  # held a connection whose client still awaited its answer
    answered_before: int = 0
    replacement: int | None = None
    respawn_seconds: float | None = None


class Load:
    """Posts every delivery from a thread pool; SIGKILLs a worker at each planned kill."""

    def __init__(
        self,
        *,
        server: Gunicorn,
        path: str,
        deliveries: list[Delivery],
        concurrency: int,
        timeout: float,
        kills: list[Kill],
    ):
        self.server = server
        self.path = path
        self.deliveries = deliveries
        self.concurrency = concurrency
        self.timeout = timeout
        self.kills = kills
        self.lock = threading.Lock()
        self.done = 0
        self.progress = threading.Condition(self.lock)
        self.awaiting: set[int] = set()  # client ports of requests not yet answered
        self.finished = False

    def post(self, delivery: Delivery, *, retry: bool) -> Attempt:
        return post(
            self.server.port,
            self.path,
            delivery,
            retry=retry,
            timeout=self.timeout,
            awaiting=self.awaiting,
            lock=self.lock,
        )

    def deliver(self, delivery: Delivery) -> None:
        first = self.post(delivery, retry=False)
        delivery.attempts.append(first)
        if first.status is None:
            time.sleep(0.1)  # the connection died: the same request once more
            delivery.attempts.append(self.post(delivery, retry=True))
        with self.progress:
            self.done += 1
            done = self.done
            self.progress.notify_all()
        step = max(len(self.deliveries) // 10, 1)
        if done % step == 0:
            say(f"  {done:>6} / {len(self.deliveries)} done")

    def killer(self) -> None:
        for kill in self.kills:
            with self.progress:
                self.progress.wait_for(
                    lambda k=kill: self.finished or self.done >= k.at_answer
                )
                if self.finished:
                    return
                kill.answered_before = self.done
            victim, kill.busy = self.pick_victim()
            if victim is None:
                return
            os.kill(victim, signal.SIGKILL)
            kill.pid = victim
            replaced = self.server.wait_workers(without=victim)
            if replaced:
                kill.replacement, kill.respawn_seconds = replaced

    def pick_victim(self) -> tuple[int | None, bool]:
        """A worker whose client still awaits its answer, if one shows within 2 s.

        The worker may still write the answer between this look and the kill.
        """
        deadline = time.monotonic() + 2
        pids = self.server.worker_pids()
        while pids and time.monotonic() < deadline:
            with self.lock:
                awaiting = set(self.awaiting)
            busy = [p for p in pids if client_ports(p, self.server.port) & awaiting]
            if busy:
                return random.choice(busy), True  # noqa: S311 - not cryptography
            time.sleep(0.002)
            pids = self.server.worker_pids()
        return (random.choice(pids), False) if pids else (None, False)  # noqa: S311

    def run(self) -> float:
        killer = threading.Thread(target=self.killer, name="killer", daemon=True)
        killer.start()
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            for future in [pool.submit(self.deliver, d) for d in self.deliveries]:
                future.result()
        elapsed = time.perf_counter() - started
        with self.progress:
            self.finished = True
            self.progress.notify_all()
        killer.join(timeout=35)
        return elapsed


# --- checks ----------------------------------------------------------------


@dataclass
class Findings:
    counts: Counter = field(default_factory=Counter)
    problems: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def problem(self, kind: str, text: str) -> None:
        self.problems[kind].append(text)


def check(deliveries: list[Delivery], *, bot: Any) -> tuple[Findings, dict[str, Any]]:
    from django.db.models import Count

    from submissions.models import FormSubmission, WebhookEvent

    events = {
        row["id"]: row
        for row in WebhookEvent.objects.filter(bot=bot)
        .annotate(run_count=Count("runs"))
        .values(
            "id",
            "delivery_id",
            "status",
            "duplicate_of_id",
            "response_status",
            "handler_name",
            "run_count",
        )
    }
    answers_by_event = dict(
        FormSubmission.objects.filter(bot=bot)
        .annotate(answer_count=Count("answers"))
        .values_list("event_id", "answer_count")
    )
    duplicated_originals = list(
        WebhookEvent.objects.filter(bot=bot, duplicate_of__isnull=True)
        .exclude(delivery_id="")
        .values("delivery_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .values_list("delivery_id", "n")
    )
    originals: dict[str, list[dict[str, Any]]] = defaultdict(list)
    duplicates: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events.values():
        target = duplicates if event["duplicate_of_id"] else originals
        target[event["delivery_id"]].append(event)

    found = Findings()
    c = found.counts
    sent_ids = {d.delivery_id for d in deliveries}
    for delivery in deliveries:
        did = delivery.delivery_id
        mine = originals.get(did, [])
        retried = len(delivery.attempts) > 1
        c["requests"] += len(delivery.attempts)
        c["retries"] += retried
        c["connection_errors"] += sum(a.status is None for a in delivery.attempts)
        c["connection_errors_on_retry"] += sum(
            a.status is None and a.retry for a in delivery.attempts
        )
        if len(duplicates.get(did, [])) > len(delivery.attempts) - 1:
            found.problem(
                "inconsistent",
                f"{did}: {len(duplicates[did])} duplicate rows for {len(delivery.attempts)} requests",
            )
        answer = delivery.answer
        if answer is None:
            c["unanswered"] += 1
            if not mine:
                c["unanswered_not_stored"] += 1
            elif mine[0]["status"] == WebhookEvent.Status.RECEIVED:
                c["unanswered_in_flight"] += 1
            else:
                c["unanswered_but_" + mine[0]["status"]] += 1
            continue
        c["answered"] += 1
        c[f"answered_{answer.status}"] += 1
        c["retries_answered"] += answer.retry
        if not mine:
            found.problem(
                "lost", f"{did}: answered {answer.status}, no original stored"
            )
            continue
        original = mine[0]
        # What the client was told must be what is stored.
        for attempt in delivery.attempts:
            if attempt.status is None:
                continue
            stored = events.get(attempt.event_id)
            if stored is None or stored["delivery_id"] != did:
                found.problem(
                    "inconsistent",
                    f"{did}: answered {attempt.status} with X-Webhook-Event-Id "
                    f"{attempt.event_id}, which is not a stored event of this delivery",
                )
            elif stored["response_status"] != attempt.status:
                found.problem(
                    "inconsistent",
                    f"{did}: answered {attempt.status}, event {attempt.event_id} "
                    f"records {stored['response_status']}",
                )
            if (
                stored
                and stored["duplicate_of_id"]
                and attempt.original_event_id != original["id"]
            ):
                found.problem(
                    "inconsistent",
                    f"{did}: duplicate answer names original {attempt.original_event_id}, "
                    f"stored original is {original['id']}",
                )
        status = answer.status
        if status == 409:
            # Answered from a duplicate while the original was never finished: its
            # worker was killed after storing it.
            c["answered_in_flight"] += 1
            if original["status"] != WebhookEvent.Status.RECEIVED:
                found.problem(
                    "inconsistent",
                    f"{did}: answered 409 in progress, original is {original['status']}",
                )
            continue
        if status != delivery.expected_status:
            found.problem(
                "unexpected",
                f"{did} ({delivery.handler}): answered {status}, expected "
                f"{delivery.expected_status}: {str(answer.reply)[:200]}",
            )
            continue
        wanted = (
            WebhookEvent.Status.PROCESSED
            if status == 200
            else WebhookEvent.Status.FAILED
        )
        answers = answers_by_event.get(original["id"])
        if original["status"] != wanted:
            found.problem(
                "inconsistent",
                f"{did}: answered {status}, original event {original['id']} is {original['status']}",
            )
        if answers != ANSWERS_PER_DELIVERY:
            found.problem(
                "inconsistent",
                f"{did}: answered {status}, original event {original['id']} has "
                + ("no submission" if answers is None else f"{answers} answers"),
            )
        if original["run_count"] != 1:
            found.problem(
                "inconsistent",
                f"{did}: event {original['id']} has {original['run_count']} handler runs",
            )
        reply = answer.reply if isinstance(answer.reply, dict) else {}
        if status == 200 and reply.get("variables", {}).get("delivery") != did:
            found.problem(
                "inconsistent", f"{did}: 200 reply is not this delivery's: {reply}"
            )
        if status == 500 and reply.get("error") != "handler_error":
            found.problem(
                "unexpected", f"{did}: 500 reply is not handler_error: {reply}"
            )

    for did, n in duplicated_originals:
        found.problem("duplicated", f"{did}: stored as an original {n} times")
    strays = [e for e in events.values() if e["delivery_id"] not in sent_ids]
    for event in strays[:20]:
        found.problem(
            "inconsistent",
            f"event {event['id']} ({event['status']}) has delivery id "
            f"{event['delivery_id']!r}, which was never sent",
        )
    stored = {
        "events": len(events),
        "by_status": Counter(e["status"] for e in events.values()),
        "submissions": len(answers_by_event),
        "duplicated_originals": len(duplicated_originals),
        # The handler ran (its run row is written) but the event was never finished.
        "received_with_run": sum(
            e["status"] == WebhookEvent.Status.RECEIVED and e["run_count"] > 0
            for e in events.values()
        ),
    }
    return found, stored


# --- report ----------------------------------------------------------------


def report(
    *,
    deliveries: list[Delivery],
    found: Findings,
    stored: dict[str, Any],
    kills: list[Kill],
    elapsed: float,
) -> bool:
    c = found.counts
    by_status = stored["by_status"]
    fails = sum(d.handler == FAIL_HANDLER for d in deliveries)

    def row(label: str, value: Any, note: str = "") -> None:
        say(f"  {label:<28}{value!s:>8}  {note}".rstrip())

    say()
    say("Soak results")
    row("sent (deliveries)", len(deliveries), f"{fails} to {FAIL_HANDLER}")
    row("requests", c["requests"], "deliveries + retries")
    row("answered", c["answered"])
    for key in sorted(k for k in c if k.startswith("answered_") and k[9:].isdigit()):
        note = {
            "answered_200": "processed",
            "answered_500": "handler_error (failed)",
            "answered_409": "delivery_in_progress: original stored, its worker killed",
        }.get(key, "")
        row(f"  HTTP {key[9:]}", c[key], note)
    row(
        "connection errors",
        c["connection_errors"],
        f"{c['connection_errors_on_retry']} on a retry",
    )
    row("retries", c["retries"], f"{c['retries_answered']} answered")
    row("unanswered", c["unanswered"])
    if c["unanswered"]:
        row("  not stored", c["unanswered_not_stored"])
        row("  stored, in flight when killed", c["unanswered_in_flight"])
        for key in sorted(k for k in c if k.startswith("unanswered_but_")):
            row(f"  stored {key[15:]}, answer lost", c[key])
    row("stored events", stored["events"])
    for status in (
        "processed",
        "failed",
        "received",
        "duplicate",
        "unrouted",
        "rejected",
    ):
        note = {
            "received": "stored but in flight when killed",
            "duplicate": "retries of a delivery already stored",
        }.get(status, "")
        row(
            f"  {status}",
            by_status.get(status, 0),
            note if by_status.get(status) else "",
        )
        if status == "received" and stored["received_with_run"]:
            row(
                "    with a handler run",
                stored["received_with_run"],
                "killed after the handler ran, before the event was finished",
            )
    row("submissions", stored["submissions"])
    for kill in kills:
        if kill.pid:
            respawn = (
                f"replaced by {kill.replacement} in {kill.respawn_seconds:.2f} s"
                if kill.replacement
                else "NOT replaced within 30 s"
            )
            row(
                "killed worker",
                kill.pid,
                f"SIGKILL {'mid-request' if kill.busy else 'while idle'} after "
                f"{kill.answered_before} answers; {respawn}",
            )
        else:
            row(
                "killed worker", "none", f"the run ended before answer {kill.at_answer}"
            )
    row("elapsed", f"{elapsed:.1f} s", f"{c['requests'] / elapsed:.0f} requests/s")

    lost = len(found.problems.get("lost", []))
    duplicated = stored["duplicated_originals"]
    inconsistent = len(found.problems.get("inconsistent", []))
    unexpected = len(found.problems.get("unexpected", []))
    row("lost", lost, "answered but not stored (must be 0)")
    row("duplicated originals", duplicated, "one delivery id stored twice (must be 0)")
    row(
        "inconsistent", inconsistent, "stored row disagrees with the answer (must be 0)"
    )
    row("unexpected answers", unexpected, "not the handler's status (must be 0)")
    for kind, items in found.problems.items():
        say(f"\n{kind} ({len(items)}), first {min(len(items), 10)}:")
        for item in items[:10]:
            say(f"  {item}")
    passed = lost == 0 and duplicated == 0 and inconsistent == 0 and unexpected == 0
    say()
    say("PASS" if passed else "FAIL")
    return passed


# --- main ----------------------------------------------------------------


def kill_fractions(first: float, count: int) -> list[float]:
    """``count`` points from ``first`` on, evenly spaced before the end of the run."""
    return [first + index * (1 - first) / count for index in range(count)]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Soak the webhook endpoint under gunicorn and PostgreSQL, killing a worker."
    )
    parser.add_argument(
        "--requests", type=int, default=5000, help="Deliveries to send."
    )
    parser.add_argument("--concurrency", type=int, default=32, help="Client threads.")
    parser.add_argument(
        "--workers",
        type=int,
        default=2 * multiprocessing.cpu_count() + 1,
        help="gunicorn workers (default: 2 * cores + 1).",
    )
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE_URL,
        help="PostgreSQL database to DROP and recreate; its name must contain 'soak'.",
    )
    parser.add_argument(
        "--port", type=int, default=0, help="Port (default: a free one)."
    )
    parser.add_argument(
        "--kill-at",
        type=float,
        default=1 / 3,
        help="Kill the first worker once this fraction of deliveries is done (default 1/3).",
    )
    parser.add_argument(
        "--kills",
        type=int,
        default=1,
        help="Workers to kill, spread from --kill-at to the end; 0 never kills.",
    )
    parser.add_argument(
        "--conn-max-age",
        type=int,
        default=60,
        help="DJANGO_CONN_MAX_AGE for gunicorn (0: a new database connection per request).",
    )
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="Seconds per request."
    )
    parser.add_argument(
        "--log", type=Path, help="gunicorn's log file (default: a temp file)."
    )
    args = parser.parse_args(argv)
    if args.requests < 1 or args.concurrency < 1 or args.workers < 1:
        parser.error("--requests, --concurrency and --workers must be at least 1.")
    if args.kills < 0 or args.conn_max_age < 0:
        parser.error("--kills and --conn-max-age cannot be negative.")
    if not 0 < args.kill_at < 1:
        parser.error("--kill-at is a fraction between 0 and 1, e.g. 0.33.")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    django_setup(args.database_url)
    from django.core.management import call_command
    from django.db import connections
    from django.urls import reverse

    from submissions.models import Bot

    try:
        name = database_recreate(args.database_url, marker="soak")
    except BenchError as exc:
        raise SoakError(str(exc)) from exc
    call_command("migrate", interactive=False, verbosity=0)
    bot = Bot.objects.create(name="Soak", slug=BOT_SLUG)
    path = reverse("webhook", args=[bot.slug])
    started = time.perf_counter()
    deliveries = deliveries_sign(count=args.requests, secret=bot.secret)
    say(
        f"Database {name} migrated; {len(deliveries)} deliveries signed in "
        f"{time.perf_counter() - started:.1f} s."
    )
    connections.close_all()

    port = args.port or free_port()
    log_path = args.log or Path(
        tempfile.mkstemp(prefix="soak-gunicorn-", suffix=".log")[1]
    )
    server = Gunicorn(
        database_url=args.database_url,
        port=port,
        workers=args.workers,
        conn_max_age=args.conn_max_age,
        log_path=log_path,
    )
    kills = [
        Kill(at_answer=max(1, round(args.requests * fraction)))
        for fraction in kill_fractions(args.kill_at, args.kills)
    ]
    try:
        server.wait_ready(path=path)
        say(
            f"gunicorn {server.process.pid} on 127.0.0.1:{port}, workers "
            f"{server.worker_pids()}; log: {log_path}"
        )
        say(
            f"Posting {len(deliveries)} deliveries from {args.concurrency} clients "
            f"(DJANGO_CONN_MAX_AGE={args.conn_max_age}, {len(kills)} worker kill(s)) ..."
        )
        load = Load(
            server=server,
            path=path,
            deliveries=deliveries,
            concurrency=args.concurrency,
            timeout=args.timeout,
            kills=kills,
        )
        elapsed = load.run()
        master_alive = server.process.poll() is None
    finally:
        code = server.stop()
    say(f"gunicorn stopped (exit {code}).")
    if not master_alive:
        say(f"The gunicorn master died during the run; see {log_path}.")

    found, stored = check(deliveries, bot=bot)
    passed = report(
        deliveries=deliveries, found=found, stored=stored, kills=kills, elapsed=elapsed
    )
    return 0 if passed and master_alive else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SoakError as exc:
        sys.stderr.write(f"soak: {exc}\n")
        sys.exit(2)

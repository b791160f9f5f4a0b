"""The rig: the many-machine topology on one machine, with failures, checked.

    .venv/bin/python bench/rig.py [--deliveries 5000] [--concurrency 16]

Run as root (PostgreSQL and PgBouncer run as ``postgres`` through
``runuser``), with Debian's PostgreSQL 15, pgbouncer, nginx and prometheus
(scripts/install-services.sh). The machine's own PostgreSQL cluster is not
touched: everything lives in a temporary directory, on free ports.

1. A temporary primary (``initdb``, trust on loopback) and a streaming
   replica of it (``pg_basebackup -R``), each started by ``pg_ctl``.
2. PgBouncer in transaction mode (deploy/pgbouncer/pgbouncer.ini, tmp paths,
   trust) in front of the primary.
3. Two web nodes: each a gunicorn (``bench.settings``, so the ``soak-ok``
   handler exists) with ``DATABASE_URL`` at PgBouncer and the transaction
   pooler setting, ``DATABASE_REPLICA_URL`` at the replica, and
   ``DJANGO_METRICS_TOKEN``; nginx (deploy/nginx/webhooks.conf, a
   self-signed certificate, both nodes in each upstream) in front. Two task
   workers (``manage.py db_worker``).
4. Prometheus (``/usr/bin/prometheus``) scraping both nodes' ``/metrics``
   with the token every second.
5. N signed deliveries through nginx from ``--concurrency`` threads, plus a
   copy of every tenth; each retried as the bot would (no answer, 502, 503,
   504: again, with backoff). Meanwhile node B is SIGKILLed (master and
   workers) at 25 % and restarted, the replica is stopped at 45 % and
   started at 70 %, and a staff user (a session cookie) reads admin pages,
   the console overview and a CSV export through nginx all the time.
6. Checks: every delivery id stored once as an original, ``processed``, with
   exactly one handler run, and every copy stored as a duplicate of it (0
   lost, 0 run twice); the replica's ``pg_stat_activity`` showed the staff
   reads; every staff read answered 200; Prometheus's count of answered
   deliveries (resets at the restart undone), plus what node B answered
   after its last scrape before the kill (read from its metrics files),
   equals the answered deliveries stored in the database.

Prints its figures; exits 1 on any loss, double run, staff read error,
unseen replica read or count mismatch; 2 when it could not set up.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import django_env, sample_delivery

ROOT = Path(__file__).resolve().parent.parent
PG_BIN = Path("/usr/lib/postgresql/15/bin")
PGBOUNCER = "/usr/sbin/pgbouncer"
NGINX = "/usr/sbin/nginx"
PROMETHEUS = "/usr/bin/prometheus"
DATABASE = "webhooks_rig"
BOT_SLUG = "rig"
HANDLER = "soak-ok"
COPY_EVERY = 10
#: Answers the bot sends again: nginx's when a node is gone, and the
#: intake's 409 ``delivery_in_progress`` (with Retry-After) and 503.
RETRY_STATUSES = {409, 502, 503, 504}
GATEWAY_STATUSES = {502, 504}  # nginx's own answers: no node answered
METRICS_TOKEN = secrets.token_urlsafe(24)


def say(line: str = "") -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class RigError(Exception):
    """The rig could not be set up: not a finding about the product."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RigError(f"{what} did not listen on {port}") from None
            time.sleep(0.2)


def as_postgres(*command: str, **kwargs) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(  # noqa: S603 - the machine's PostgreSQL programs
        ["runuser", "-u", "postgres", "--", *command],  # noqa: S607
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        **kwargs,
    )
    if result.returncode != 0:
        raise RigError(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")
    return result


def chown_postgres(path: Path) -> None:
    postgres = pwd.getpwnam("postgres")
    os.chown(path, postgres.pw_uid, postgres.pw_gid)


# --- PostgreSQL: a primary and its streaming replica ---------------------------


class Cluster:
    def __init__(self, directory: Path, port: int) -> None:
        self.directory, self.port = directory, port

    def start(self) -> None:
        as_postgres(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.directory),
            "-l",
            str(self.directory.parent / f"pg-{self.port}.log"),
            "-w",
            "-o",
            f"-p {self.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={self.directory.parent} "
            "-c max_connections=300 -c shared_buffers=128MB",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        as_postgres(
            str(PG_BIN / "pg_ctl"), "-D", str(self.directory), "-m", mode, "-w", "stop"
        )

    def running(self) -> bool:
        return (self.directory / "postmaster.pid").exists()

    def url(self, database: str = DATABASE, **query: str) -> str:
        tail = f"?{urllib.parse.urlencode(query)}" if query else ""
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}{tail}"


def clusters(workdir: Path) -> tuple[Cluster, Cluster]:
    primary = Cluster(workdir / "primary", free_port())
    primary.directory.mkdir()
    chown_postgres(primary.directory)
    as_postgres(
        str(PG_BIN / "initdb"),
        "-D",
        str(primary.directory),
        "-U",
        "postgres",
        "-A",
        "trust",  # initdb's pg_hba then trusts replication on loopback too
        "--no-sync",
    )
    primary.start()
    replica = Cluster(workdir / "replica", free_port())
    as_postgres(
        str(PG_BIN / "pg_basebackup"),
        "-h",
        "127.0.0.1",
        "-p",
        str(primary.port),
        "-U",
        "postgres",
        "-D",
        str(replica.directory),
        "-R",  # standby.signal and primary_conninfo: a streaming replica
        "-X",
        "stream",
        "--no-sync",
    )
    replica.start()
    return primary, replica


def sql(
    cluster: Cluster, query: str, params: tuple = (), database: str = "postgres"
) -> list[tuple]:
    import psycopg

    with psycopg.connect(
        cluster.url(database), autocommit=True, connect_timeout=5
    ) as connection:
        cursor = connection.execute(query, params)
        return cursor.fetchall() if cursor.description else []


# --- PgBouncer, nginx, Prometheus ------------------------------------------------


def ini_with(text: str, **values: str) -> str:
    for key, value in values.items():
        text, found = re.subn(
            rf"^{key}\s*=.*$", f"{key} = {value}", text, count=1, flags=re.M
        )
        if not found:
            raise RigError(f"{key} is not in deploy/pgbouncer/pgbouncer.ini")
    return text


def pgbouncer(workdir: Path, primary: Cluster) -> tuple[subprocess.Popen, int]:
    """deploy/pgbouncer/pgbouncer.ini with tmp paths, trust, and the rig's database."""
    directory = workdir / "pgbouncer"
    directory.mkdir()
    port = free_port()
    (directory / "userlist.txt").write_text('"postgres" ""\n')
    text = re.sub(
        r"^webhooks = .*$",
        f"{DATABASE} = host=127.0.0.1 port={primary.port} dbname={DATABASE}",
        (ROOT / "deploy/pgbouncer/pgbouncer.ini").read_text(),
        flags=re.M,
    )
    config = directory / "pgbouncer.ini"
    config.write_text(
        ini_with(
            text,
            listen_port=str(port),
            unix_socket_dir="",
            auth_type="trust",
            auth_file=str(directory / "userlist.txt"),
            logfile=str(directory / "pgbouncer.log"),
            pidfile=str(directory / "pgbouncer.pid"),
        )
    )
    for path in [directory, *directory.iterdir()]:
        chown_postgres(path)
    process = subprocess.Popen(  # noqa: S603 - Debian's pgbouncer, our config
        ["runuser", "-u", "postgres", "--", PGBOUNCER, str(config)],  # noqa: S607
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_port(port, "pgbouncer")
    return process, port


def nginx(workdir: Path, nodes: list[int]) -> tuple[subprocess.Popen, int]:
    """deploy/nginx/webhooks.conf, both nodes in each upstream, a self-signed certificate."""
    prefix = workdir / "nginx"
    (prefix / "logs").mkdir(parents=True)
    cert, key = prefix / "cert.pem", prefix / "key.pem"
    subprocess.run(  # noqa: S603 - the machine's openssl
        [  # noqa: S607
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=hooks.example.com",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        capture_output=True,
        check=True,
        timeout=60,
    )
    https = free_port()
    servers = "".join(f"    server 127.0.0.1:{port};\n" for port in nodes)
    site = (
        (ROOT / "deploy/nginx/webhooks.conf")
        .read_text()
        .replace("/etc/letsencrypt/live/hooks.example.com/fullchain.pem", str(cert))
        .replace("/etc/letsencrypt/live/hooks.example.com/privkey.pem", str(key))
        .replace("    server 127.0.0.1:8000;\n", servers)
        .replace("    server 127.0.0.1:8001;\n", servers)
        .replace("listen 443 ssl http2;", f"listen 127.0.0.1:{https} ssl http2;")
        .replace("listen 80;", f"listen 127.0.0.1:{free_port()};")
        .replace("listen [::]:443 ssl http2;\n", "")
        .replace("listen [::]:80;\n", "")
    )
    (prefix / "webhooks.conf").write_text(site)
    (prefix / "nginx.conf").write_text(
        f"pid {prefix}/nginx.pid;\nerror_log {prefix}/logs/error.log;\n"
        "worker_processes 1;\nevents {}\nhttp {\n"
        f"    access_log off;\n    client_body_temp_path {prefix}/body;\n"
        f"    proxy_temp_path {prefix}/proxy;\n    include webhooks.conf;\n}}\n"
    )
    process = subprocess.Popen(  # noqa: S603 - Debian's nginx, our site
        [NGINX, "-p", str(prefix), "-c", "nginx.conf", "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_port(https, "nginx")
    return process, https


def prometheus(workdir: Path, nodes: list[int]) -> tuple[subprocess.Popen, int]:
    directory = workdir / "prometheus"
    directory.mkdir()
    (directory / "token").write_text(METRICS_TOKEN + "\n")
    port = free_port()
    targets = ", ".join(f'"127.0.0.1:{p}"' for p in nodes)
    (directory / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n  - job_name: webhooks\n"
        f"    authorization:\n      credentials_file: {directory / 'token'}\n"
        f"    static_configs:\n      - targets: [{targets}]\n"
    )
    process = subprocess.Popen(  # noqa: S603 - Debian's prometheus, our config
        [
            PROMETHEUS,
            f"--config.file={directory / 'prometheus.yml'}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=(directory / "log").open("w"),
        stderr=subprocess.STDOUT,
    )
    wait_port(port, "prometheus")
    return process, port


def prometheus_query(port: int, query: str) -> list[dict]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode(
        {"query": query}
    )
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())["data"]["result"]


# --- the web nodes and task workers ------------------------------------------------------


class Node:
    """One web machine: a gunicorn of its own, in its own process group."""

    def __init__(self, name: str, workdir: Path, env: dict[str, str]) -> None:
        self.name, self.port = name, free_port()
        self.metrics_dir = workdir / f"metrics-{name}"
        self.log = workdir / f"node-{name}.log"
        self.env = {
            **env,
            "GUNICORN_BIND": f"127.0.0.1:{self.port}",
            "PROMETHEUS_MULTIPROC_DIR": str(self.metrics_dir),
        }
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - our interpreter and config
            [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py")],
            cwd=ROOT,
            env=self.env,
            stdout=self.log.open("a"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RigError(f"node {self.name} did not come up; see {self.log}")
            time.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL the machine's gunicorn, master and workers at once."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


def counted_in_files(directory: Path) -> float:
    """``webhooks_deliveries_total`` summed from a node's metrics files."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))
    return sum(
        sample.value
        for metric in registry.collect()
        for sample in metric.samples
        if sample.name == "webhooks_deliveries_total"
    )


# --- load ------------------------------------------------------------------------------


@dataclass
class Sent:
    delivery_id: str
    body: bytes
    token: str
    copy: bool = False
    statuses: list[int | str] = field(default_factory=list)

    @property
    def answered(self) -> bool:
        return bool(self.statuses) and self.statuses[-1] == 200


# The rig's certificate is self-signed; one context for every request (making
# one loads the system's CA store).
TLS = ssl.create_default_context()
TLS.check_hostname = False
TLS.verify_mode = ssl.CERT_NONE


def https(
    port: int, method: str, path: str, body: bytes = b"", headers=None, timeout=60
):
    context = TLS
    conn = http.client.HTTPSConnection(
        "127.0.0.1", port, timeout=timeout, context=context
    )
    try:
        conn.request(
            method, path, body=body, headers={"Host": "127.0.0.1", **(headers or {})}
        )
        response = conn.getresponse()
        return response.status, response.read(), response.getheader("Retry-After")
    finally:
        conn.close()


def deliver(port: int, sent: Sent) -> None:
    """As the bot would: again on no answer or a gateway error, backing off."""
    delay = 0.2
    for _ in range(30):
        try:
            status, _, retry_after = https(
                port,
                "POST",
                f"/webhooks/{BOT_SLUG}/",
                sent.body,
                {
                    "Authorization": f"Bearer {sent.token}",
                    "Content-Type": "application/json",
                },
                timeout=40,
            )
        except (OSError, http.client.HTTPException) as exc:
            sent.statuses.append(type(exc).__name__)
        else:
            sent.statuses.append(status)
            if status not in RETRY_STATUSES:
                return
            if retry_after:
                delay = max(delay, float(retry_after))
        time.sleep(delay)
        delay = min(delay * 2, 5.0)


class StaffReader(threading.Thread):
    """A staff user reading admin pages and a CSV export through nginx, all along."""

    PAGES = (
        "/admin/submissions/webhookevent/",
        "/admin/overview/",
        "/admin/submissions/formsubmission/?q=user1",
    )
    EXPORT = "/admin/submissions/formsubmission/export/?q=user1"

    def __init__(
        self, port: int, session: str, replica: Cluster, phase, node_port: int
    ) -> None:
        super().__init__(daemon=True)
        self.node_port = node_port
        self.port, self.cookie, self.replica, self.phase = (
            port,
            f"sessionid={session}",
            replica,
            phase,
        )
        self.statuses: Counter[tuple[str, str, int | str]] = Counter()
        self.readyz: Counter[tuple[str, str]] = Counter()
        self.seen_on_replica: Counter[str] = Counter()
        self.sample_query = ""
        self.done = threading.Event()

    def run(self) -> None:
        round_ = 0
        while not self.done.is_set():
            paths = [*self.PAGES, *([self.EXPORT] if round_ % 3 == 0 else [])]
            for path in paths:
                kind = "export" if "export" in path else "page"
                try:
                    status, body, _ = https(
                        self.port, "GET", path, headers={"Cookie": self.cookie}
                    )
                    if status == 200 and kind == "export" and b"\n" not in body:
                        status = "not csv"
                except (OSError, http.client.HTTPException) as exc:
                    status = type(exc).__name__
                self.statuses[(self.phase(), kind, status)] += 1
            self.look_at_replica()
            self.ask_readyz()
            round_ += 1
            time.sleep(0.3)

    def ask_readyz(self) -> None:
        """Where node A's staff reads go now, by its /readyz."""
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.node_port, timeout=10)
            conn.request("GET", "/readyz")
            reads = json.loads(conn.getresponse().read())["replica"]["reads"]
        except (OSError, http.client.HTTPException, KeyError, ValueError) as exc:
            reads = type(exc).__name__
        self.readyz[(self.phase(), reads)] += 1

    def look_at_replica(self) -> None:
        if not self.replica.running():
            return
        try:
            rows = sql(
                self.replica,
                "SELECT application_name, query FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid() "
                "AND query LIKE %s",
                (DATABASE, "%submissions_%"),
            )
        except Exception:  # noqa: BLE001 - a replica starting up: look again later
            return
        for application, query in rows:
            self.seen_on_replica[application] += 1
            self.sample_query = self.sample_query or query[:120]


# --- the run --------------------------------------------------------------------------


def setup_data(primary: Cluster) -> tuple[str, str]:
    """Migrate, create the bot and a staff session; (bot secret, session key)."""
    env = django_env(primary.url())
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=600,
    )
    os.environ.update(env)
    import django

    django.setup()
    from django.contrib.auth import (
        BACKEND_SESSION_KEY,
        HASH_SESSION_KEY,
        SESSION_KEY,
        get_user_model,
    )
    from django.contrib.sessions.backends.db import SessionStore

    from submissions.models import Bot

    bot = Bot.objects.create(name="Rig", slug=BOT_SLUG)
    user = get_user_model().objects.create_superuser(
        "rig", "rig@example.com", secrets.token_urlsafe(16)
    )
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return bot.secret, session.session_key


def check_database(sent: list[Sent]) -> dict[str, int]:
    from django.db.models import Count, F

    from submissions.models import HandlerRun, WebhookEvent

    events = WebhookEvent.objects.filter(bot__slug=BOT_SLUG)
    originals = {}
    for delivery_id, pk, status in events.filter(duplicate_of__isnull=True).values_list(
        "delivery_id", "pk", "status"
    ):
        originals.setdefault(delivery_id, []).append((pk, status))
    runs = dict(
        HandlerRun.objects.filter(event__bot__slug=BOT_SLUG)
        .values("event_id")
        .annotate(n=Count("id"))
        .values_list("event_id", "n")
    )
    duplicates = Counter(
        events.filter(duplicate_of__isnull=False).values_list("delivery_id", flat=True)
    )
    wrong_duplicates = (
        events.filter(duplicate_of__isnull=False)
        .exclude(duplicate_of__delivery_id=F("delivery_id"))
        .count()
    )
    ids = {s.delivery_id for s in sent if not s.copy}
    copies = Counter(s.delivery_id for s in sent if s.copy)
    lost = [
        i
        for i in ids
        if len(originals.get(i, [])) != 1 or originals[i][0][1] != "processed"
    ]
    twice = [
        i
        for i in ids
        if i in originals and sum(runs.get(pk, 0) for pk, _ in originals[i]) > 1
    ]
    no_run = [
        i
        for i in ids
        if i in originals and sum(runs.get(pk, 0) for pk, _ in originals[i]) == 0
    ]
    undeduplicated = [i for i, n in copies.items() if duplicates.get(i, 0) < n]
    return {
        "deliveries sent": len(ids),
        "copies sent": sum(copies.values()),
        "originals stored": sum(len(v) for v in originals.values()),
        "duplicates stored": sum(duplicates.values()),
        "lost (no single processed original)": len(lost),
        "run twice": len(twice),
        "originals without a run": len(no_run),
        "copies not stored as duplicates": len(undeduplicated),
        "duplicates pointing at another delivery": wrong_duplicates,
        "answered events in the database": events.filter(
            response_status__isnull=False
        ).count(),
        "events never answered": events.filter(response_status__isnull=True).count(),
    }


def prometheus_total(
    port: int, node_b: str, *, killed_at: float, restarted_at: float
) -> tuple[float, float]:
    """Answered deliveries Prometheus saw, and node B's last scraped total before
    its kill. Each series' raw samples are summed as ``increase`` would, without
    extrapolation: a drop is a reset, and so is node B's first sample after its
    restart."""
    total = b_before_kill = 0.0
    for series in prometheus_query(port, "webhooks_deliveries_total[2h]"):
        on_b = series["metric"]["instance"] == node_b
        previous, last_before_kill, reset_done = 0.0, 0.0, False
        for stamp, raw in series["values"]:
            value = float(raw)
            if on_b and stamp >= restarted_at and not reset_done:
                previous, reset_done = 0.0, True
            total += value - previous if value >= previous else value
            previous = value
            if on_b and stamp < killed_at:
                last_before_kill = value
        b_before_kill += last_before_kill
    return total, b_before_kill


def run(args: argparse.Namespace) -> int:
    for program in (PGBOUNCER, NGINX, PROMETHEUS, str(PG_BIN / "pg_basebackup")):
        if not Path(program).exists():
            raise RigError(
                f"{program} is missing (scripts/install-services.sh installs it)"
            )
    if os.geteuid() != 0:
        raise RigError(
            "run as root: PostgreSQL and PgBouncer run as postgres via runuser"
        )
    workdir = Path(tempfile.mkdtemp(prefix="rig-"))
    workdir.chmod(0o755)
    chown_postgres(workdir)  # the clusters, their logs and sockets live here
    processes: list[subprocess.Popen] = []
    nodes: list[Node] = []
    workers: list[subprocess.Popen] = []
    primary = replica = None
    started = time.monotonic()
    try:
        primary, replica = clusters(workdir)
        sql(primary, f"CREATE DATABASE {DATABASE}")
        secret, session = setup_data(primary)
        say(
            f"primary :{primary.port}, streaming replica :{replica.port} "
            f"(pg_basebackup -R), in {workdir}"
        )
        bouncer, bouncer_port = pgbouncer(workdir, primary)
        processes.append(bouncer)
        env = {
            **django_env(
                f"postgres://postgres@127.0.0.1:{bouncer_port}/{DATABASE}?connect_timeout=5"
            ),
            "DJANGO_DB_TRANSACTION_POOLER": "true",
            "DATABASE_REPLICA_URL": replica.url(
                connect_timeout="2", application_name="webhooks-staff-replica"
            ),
            "DATABASE_REPLICA_CHECK_SECONDS": "2",
            "DJANGO_METRICS_TOKEN": METRICS_TOKEN,
            "DJANGO_SECURE_PROXY_SSL_HEADER": "true",
            "DJANGO_LOG_LEVEL": "WARNING",
            "GUNICORN_WORKERS": "2",
            "GUNICORN_THREADS": "8",
            "WEBHOOK_IN_FLIGHT_LEASE_SECONDS": "5",
        }
        nodes = [Node("a", workdir, env), Node("b", workdir, env)]
        for node in nodes:
            node.start()
        for index in range(2):
            workers.append(
                subprocess.Popen(
                    [sys.executable, "manage.py", "db_worker", "--no-reload"],
                    cwd=ROOT,
                    env=env,
                    stdout=(workdir / f"worker-{index}.log").open("w"),
                    stderr=subprocess.STDOUT,
                )
            )
        proxy, https_port = nginx(workdir, [n.port for n in nodes])
        processes.append(proxy)
        prom, prom_port = prometheus(workdir, [n.port for n in nodes])
        processes.append(prom)
        say(
            f"pgbouncer :{bouncer_port} (transaction mode), nodes :{nodes[0].port} "
            f":{nodes[1].port}, nginx https :{https_port}, prometheus :{prom_port}, "
            "2 task workers"
        )
        say(f"set up in {time.monotonic() - started:.0f} s")

        from submissions.tokens import sign_token

        sent: list[Sent] = []
        for index in range(args.deliveries):
            delivery_id, body = sample_delivery(index, tag="rig", handler=HANDLER)
            token = sign_token(secret, body=body, lifetime_seconds=7200)
            sent.append(Sent(delivery_id, body, token))
        copies = [
            Sent(s.delivery_id, s.body, s.token, copy=True) for s in sent[::COPY_EVERY]
        ]

        done = Counter()
        phase_name = ["both nodes, replica up"]
        reader = StaffReader(
            https_port, session, replica, lambda: phase_name[0], nodes[0].port
        )
        reader.start()
        events: dict[str, float] = {}
        b_in_files = [0.0]

        def chaos() -> None:
            n = args.deliveries
            while done["n"] < n * 0.25:
                time.sleep(0.05)
            phase_name[0] = "node b killed"
            nodes[1].kill()
            events["kill"] = time.time()
            b_in_files[0] = counted_in_files(nodes[1].metrics_dir)
            time.sleep(3)
            events["restart"] = time.time()
            nodes[1].start()
            phase_name[0] = "node b restarted"
            while done["n"] < n * 0.45:
                time.sleep(0.05)
            replica.stop()
            events["replica stop"] = time.time()
            phase_name[0] = "replica stopped"
            while done["n"] < n * 0.70:
                time.sleep(0.05)
            replica.start()
            events["replica start"] = time.time()
            phase_name[0] = "replica back"

        chaos_thread = threading.Thread(target=chaos, daemon=True)
        chaos_thread.start()
        lock = threading.Lock()

        def one(item: Sent) -> None:
            deliver(https_port, item)
            with lock:
                done["n"] += 0 if item.copy else 1

        load_started, load_wall = time.monotonic(), time.time()
        with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
            # Each tenth delivery's copy goes out right after its original.
            def with_copy(item: Sent) -> None:
                one(item)
                if int(item.delivery_id.rsplit("-", 1)[1]) % COPY_EVERY == 0:
                    one(copies[int(item.delivery_id.rsplit("-", 1)[1]) // COPY_EVERY])

            list(pool.map(with_copy, sent))
        load_seconds = time.monotonic() - load_started
        chaos_thread.join(timeout=120)
        time.sleep(4)  # the last scrapes, the readers' last round
        reader.done.set()
        reader.join(timeout=60)
        ready_body = http.client.HTTPConnection("127.0.0.1", nodes[0].port, timeout=10)
        ready_body.request("GET", "/readyz?task=1")
        ready = json.loads(ready_body.getresponse().read())

        everything = sent + copies
        outcomes = Counter(
            "answered 200"
            if s.answered
            else f"unanswered ({s.statuses[-1] if s.statuses else 'none'})"
            for s in everything
        )
        retried = sum(1 for s in everything if len(s.statuses) > 1)
        # Answers a node gave that reached the client (any status but nginx's own).
        received = sum(
            1
            for s in everything
            for st in s.statuses
            if isinstance(st, int) and st not in GATEWAY_STATUSES
        )
        figures = check_database(sent + copies)
        seen, b_scraped = prometheus_total(
            prom_port,
            f"127.0.0.1:{nodes[1].port}",
            killed_at=events["kill"],
            restarted_at=events["restart"],
        )
        unscraped = max(b_in_files[0] - b_scraped, 0.0)

        say()
        say(
            f"load: {len(sent)} deliveries + {len(copies)} copies through nginx in "
            f"{load_seconds:.1f} s ({len(everything) / load_seconds:.0f}/s), "
            f"concurrency {args.concurrency}; {retried} retried by the client"
        )
        say(f"client outcomes: {dict(outcomes)}")
        say(
            "events: "
            + ", ".join(f"{k} at +{v - load_wall:.1f} s" for k, v in events.items())
        )
        for key, value in figures.items():
            say(f"  {key}: {value}")
        say("staff reads through nginx (phase, kind, status: count):")
        for (phase, kind, status), count in sorted(reader.statuses.items(), key=str):
            say(f"  {phase}, {kind}, {status}: {count}")
        say("node a's /readyz, where staff reads go (phase, reads: count):")
        for (phase, reads), count in sorted(reader.readyz.items(), key=str):
            say(f"  {phase}, {reads}: {count}")
        say(
            f"staff reads seen on the replica's pg_stat_activity: {dict(reader.seen_on_replica)}"
            f"; e.g. {reader.sample_query!r}"
        )
        say(
            f"readyz after the run: {json.dumps(ready.get('replica'))}, tasks {json.dumps(ready.get('tasks'))}"
        )
        scrapes = {
            r["metric"]["instance"]: r["value"][1]
            for r in prometheus_query(prom_port, "count_over_time(up[2h])")
        }
        scraped = {
            r["metric"]["instance"]: r["value"][1]
            for r in prometheus_query(prom_port, "sum_over_time(up[2h])")
        }
        say(
            "prometheus scrapes (succeeded/tried): "
            + ", ".join(f"{i} {scraped[i]}/{n}" for i, n in sorted(scrapes.items()))
        )
        counted = round(seen + unscraped)
        stored = figures["answered events in the database"]
        say(
            f"prometheus: {seen:.0f} answered deliveries seen (resets undone) + "
            f"{unscraped:.0f} answered by node b after its last scrape before the "
            f"kill (read from its metrics files) = {counted}; answers the client "
            f"received: {received}; answered events in the database: {stored}"
        )

        failures = []
        if figures["lost (no single processed original)"]:
            failures.append("deliveries lost")
        if figures["run twice"]:
            failures.append("deliveries run twice")
        if (
            figures["copies not stored as duplicates"]
            or figures["duplicates pointing at another delivery"]
        ):
            failures.append("copies not de-duplicated")
        if outcomes.get("answered 200", 0) != len(everything):
            failures.append("deliveries the client never got a 200 for")
        if any(status != 200 for (_, _, status) in reader.statuses):
            failures.append("staff reads that failed")
        if not reader.seen_on_replica:
            failures.append("no staff read seen on the replica")
        if not reader.readyz.get(("replica stopped", "primary")):
            failures.append(
                "no fallback to the primary seen while the replica was down"
            )
        # Equal but for requests in flight on node b when it was killed: an
        # answer stored but not yet counted, or counted but never sent.
        if not received <= counted <= stored or stored - received > args.concurrency:
            failures.append("prometheus's count is off")
        say()
        say(
            "FAILED: " + "; ".join(failures)
            if failures
            else "OK: 0 lost, 0 run twice, every copy de-duplicated, staff reads on the "
            "replica, prometheus agrees"
        )
        say(f"whole run {time.monotonic() - started:.0f} s")
        return 1 if failures else 0
    finally:
        for node in nodes:
            node.stop()
        for process in [*workers, *processes]:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
        for cluster in (replica, primary):
            if cluster is not None and cluster.running():
                try:
                    cluster.stop("immediate")
                except RigError as exc:
                    say(f"stopping a cluster: {exc}")
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--keep", action="store_true", help="keep the tmp directory (logs)"
    )
    args = parser.parse_args()
    try:
        return run(args)
    except RigError as exc:
        say(f"rig: {exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main())

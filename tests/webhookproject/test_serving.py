"""Production serving: /healthz, JSON logs, whitenoise, and two gunicorns on one database.

The last test starts two real gunicorn servers (two workers each) on different
ports against the test PostgreSQL database, as two machines behind a load
balancer would run, and sends deliveries and their copies across both.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from submissions.models import FormSubmission, HandlerRun, WebhookEvent
from submissions.tokens import sign_token
from tests.factories import BotFactory

ROOT = Path(__file__).resolve().parents[2]


def clean_env(**overrides: str) -> dict[str, str]:
    """This process's environment without the project's settings, plus ``overrides``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("DJANGO_", "WEBHOOK_", "DATABASE_URL", "DATABASE_REPLICA_", "GUNICORN_")
        )
    }
    # DJANGO_DEBUG explicitly: a developer's .env (written by `make run`) says
    # true, and the servers under test are production ones unless told.
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "webhookproject.settings",
            "DJANGO_DEBUG": "false",
            **overrides,
        }
    )
    return env


# -- /healthz -----------------------------------------------------------------


@pytest.mark.django_db
def test_healthz_answers_200_with_json_when_the_database_answers(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": True}  # and migrated
    assert response["Cache-Control"] == "no-store"


@pytest.mark.django_db
def test_healthz_ignores_host_checks_and_the_https_redirect(client, settings):
    # A load balancer probes the backend's own address over plain HTTP.
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["hooks.example.com"]

    probe = client.get("/healthz/", HTTP_HOST="10.0.0.7:8000")
    other = client.get("/admin/login/", HTTP_HOST="10.0.0.7:8000")

    assert probe.status_code == 200
    assert other.status_code == 400  # everything else is still host-checked


@pytest.mark.django_db
def test_healthz_takes_head_and_refuses_writes(client):
    assert client.head("/healthz").status_code == 200
    refused = client.post("/healthz")
    assert refused.status_code == 405
    assert refused["Allow"] == "GET, HEAD"
    assert refused.json()["error"] == "method_not_allowed"


def test_healthz_answers_503_when_the_database_is_unreachable():
    # A real unreachable server: nothing listens on a port we just closed.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    script = (
        "import django, json; django.setup();"
        "from django.test import Client;"
        "r = Client().get('/healthz');"
        "print(json.dumps({'status': r.status_code, 'body': r.json()}))"
    )
    result = subprocess.run(  # noqa: S603 - our interpreter, our script
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=clean_env(
            DATABASE_URL=f"postgres://nobody@127.0.0.1:{port}/nothing",
            DJANGO_SECURE_SSL_REDIRECT="false",
            DJANGO_LOG_LEVEL="CRITICAL",
        ),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer == {
        "status": 503,
        "body": {"status": "unavailable", "database": False},
    }


# -- JSON logs ----------------------------------------------------------------


def test_production_logs_are_json_with_the_delivery_fields(deliver, caplog):
    console = logging.getLogger().handlers[0]
    with caplog.at_level(logging.INFO, logger="submissions.intake"):
        response = deliver(
            {"handler": "save-form", "id": "log-1", "formValues": {"a": "1"}}
        )

    (record,) = [r for r in caplog.records if r.name == "submissions.intake"]
    line = console.formatter.format(record)
    assert "\n" not in line
    fields = json.loads(line)
    assert fields["level"] == "INFO"
    assert fields["logger"] == "submissions.intake"
    assert fields["event_id"] == int(response["X-Webhook-Event-Id"])
    assert fields["bot"] == "demo"
    assert fields["handler"] == "save-form"
    assert fields["status"] == "processed"
    assert fields["response_status"] == 200
    assert isinstance(fields["duration_ms"], float)
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", fields["time"])


def test_an_unknown_log_format_is_refused_at_startup():
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=clean_env(DJANGO_LOG_FORMAT="xml"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "DJANGO_LOG_FORMAT must be 'json' or 'plain'" in result.stderr


# -- two gunicorns, one PostgreSQL ----------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def request(
    port: int, method: str, path: str, body: bytes = b"", headers: dict | None = None
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def database_url() -> str:
    """The test database, for servers outside this process."""
    db = settings.DATABASES["default"]
    auth = quote(db["USER"] or "postgres")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"])
    host = db.get("HOST") or "127.0.0.1"
    return f"postgres://{auth}@{host}:{db.get('PORT') or 5432}/{db['NAME']}"


@pytest.fixture
def static_root(tmp_path: Path) -> Path:
    root = tmp_path / "static"
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=clean_env(DJANGO_STATIC_ROOT=str(root)),
        check=True,
        timeout=300,
    )
    return root


@pytest.fixture
def start_gunicorns(
    static_root: Path, tmp_path: Path
) -> Iterator[Callable[..., list[int]]]:
    """Starts gunicorn servers (two workers each) on a database; stops them after."""
    servers: list[subprocess.Popen] = []

    def start(database_url: str, count: int = 2) -> list[int]:
        ports = [free_port() for _ in range(count)]
        for port in ports:
            log = (tmp_path / f"gunicorn-{port}.log").open("w")
            env = clean_env(
                DATABASE_URL=database_url,
                DJANGO_SECURE_SSL_REDIRECT="false",
                DJANGO_STATIC_ROOT=str(static_root),
                DJANGO_CONN_MAX_AGE="60",
                GUNICORN_BIND=f"127.0.0.1:{port}",
                GUNICORN_WORKERS="2",
            )
            servers.append(
                subprocess.Popen(
                    [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        deadline = time.monotonic() + 60
        for port, server in zip(ports, servers[-count:], strict=True):
            while True:
                assert server.poll() is None, f"gunicorn exited; see {log.name}"
                try:
                    # Up: it answers (503 on a database left unmigrated on purpose).
                    if request(port, "GET", "/healthz")[0] in (200, 503):
                        break
                except OSError:
                    pass
                assert time.monotonic() < deadline, "gunicorn did not come up"
                time.sleep(0.2)
        return ports

    yield start
    for server in servers:
        server.terminate()
    for server in servers:
        server.wait(timeout=30)


def server_log(
    tmp_path: Path, port: int, until: Callable[[list[dict]], bool]
) -> list[dict]:
    """The JSON objects a server logged, one per line (all lines must be JSON).

    A server writes a request's access line after answering it: read again
    until ``until(lines)`` holds, for a few seconds at most.
    """
    deadline = time.monotonic() + 10
    while True:
        text = (tmp_path / f"gunicorn-{port}.log").read_text()
        lines = [json.loads(line) for line in text.splitlines() if line]
        if until(lines) or time.monotonic() > deadline:
            return lines
        time.sleep(0.1)


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="several servers on one database: the PostgreSQL run of the suite",
)
@pytest.mark.django_db(transaction=True)
def test_two_gunicorns_share_one_postgresql(start_gunicorns, tmp_path):
    bot = BotFactory(slug="fleet")
    first, second = start_gunicorns(database_url())

    def post(port: int, delivery_id: str) -> tuple[int, dict[str, str], bytes]:
        body = json.dumps(
            {
                "handler": "save-form",
                "id": delivery_id,
                "conversationId": f"conv-{delivery_id}",
                "formValues": {"email": f"{delivery_id}@example.com", "n": "1"},
            }
        ).encode()
        headers = {
            "Authorization": f"Bearer {sign_token(bot.secret, body=body)}",
            "Content-Type": "application/json",
        }
        return request(port, "POST", "/webhooks/fleet/", body, headers)

    ids = [f"d-{n}" for n in range(40)]

    def deliver_twice(delivery_id: str, ports: tuple[int, int]) -> list[tuple]:
        # A delivery and its copy, released together at the two servers, as
        # a bot retrying through a load balancer would send them: the two
        # inserts race for the unique constraint in two processes.
        gate = threading.Barrier(2)

        def one(port: int) -> tuple:
            gate.wait()
            return (delivery_id, *post(port, delivery_id))

        with ThreadPoolExecutor(max_workers=2) as pair:
            return list(pair.map(one, ports))

    # The first half: pairs across both servers; the second half: once each.
    jobs = [
        (i, (first, second) if n % 2 else (second, first))
        for n, i in enumerate(ids[:20])
    ]
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = [
            a for pair in pool.map(lambda j: deliver_twice(*j), jobs) for a in pair
        ]
        answers += pool.map(
            lambda n: (ids[n], *post((first, second)[n % 2], ids[n])), range(20, 40)
        )

    originals = {
        e.delivery_id: e for e in WebhookEvent.objects.filter(duplicate_of=None)
    }
    assert sorted(originals) == sorted(ids)
    assert {e.status for e in originals.values()} == {"processed"}
    assert FormSubmission.objects.count() == len(ids)
    assert HandlerRun.objects.count() == len(ids)  # no delivery ran twice
    copies = WebhookEvent.objects.filter(status=WebhookEvent.Status.DUPLICATE)
    assert copies.count() == 20
    assert all(c.duplicate_of.delivery_id == c.delivery_id for c in copies)

    for delivery_id, status, headers, body in answers:
        stored = WebhookEvent.objects.get(pk=headers["X-Webhook-Event-Id"])
        assert stored.delivery_id == delivery_id
        assert stored.response_status == status
        assert json.loads(body) == stored.response_body
        if status == 409:  # a copy that met its original still running
            assert stored.status == "duplicate"
            assert headers["Retry-After"] == "1"
        else:
            assert status == 200
            assert json.loads(body) == originals[delivery_id].response_body

    # A retried copy, now the original has finished, gets its reply.
    status, headers, body = post(second, ids[0])
    assert status == 200
    assert json.loads(body) == originals[ids[0]].response_body
    assert headers["X-Webhook-Original-Event-Id"] == str(originals[ids[0]].pk)

    # One JSON log line per delivery, across both servers, with its fields.
    def intake(lines: list[dict]) -> list[dict]:
        return [line for line in lines if line["logger"] == "submissions.intake"]

    logs = {port: server_log(tmp_path, port, until=bool) for port in (first, second)}
    deliveries = [line for lines in logs.values() for line in intake(lines)]
    assert len(deliveries) == len(answers) + 1
    logged = {line["event_id"]: line for line in deliveries}
    for event in WebhookEvent.objects.all():
        line = logged[event.pk]
        assert (line["bot"], line["handler"]) == ("fleet", "save-form")
        assert (line["status"], line["response_status"]) == (
            event.status,
            event.response_status,
        )


def test_whitenoise_serves_the_admin_assets_under_hashed_names(
    start_gunicorns, tmp_path
):
    # The login page reads no table: an empty SQLite file is database enough.
    (port,) = start_gunicorns(f"sqlite:///{tmp_path / 'empty.sqlite3'}", count=1)
    status, _, page = request(port, "GET", "/admin/login/")
    assert status == 200
    stylesheet = re.search(rb'href="(/static/admin/css/base\.[0-9a-f]{12}\.css)"', page)
    assert stylesheet, "the admin links its stylesheet under a hashed name"

    status, headers, css = request(
        port, "GET", stylesheet[1].decode(), headers={"Accept-Encoding": "gzip"}
    )
    assert status == 200
    assert headers["Content-Type"].startswith("text/css")
    assert "immutable" in headers["Cache-Control"]
    assert headers.get("Content-Encoding") == "gzip"
    assert len(css) > 100

    # gunicorn's own lines are JSON too: the access log has both requests.
    def access(lines: list[dict]) -> list[str]:
        return [
            line["message"] for line in lines if line["logger"] == "gunicorn.access"
        ]

    css_path = stylesheet[1].decode()

    def logged(lines: list[dict]) -> bool:
        # Threads write access lines in the order they finish, not the order
        # the requests came: wait for every line looked for below.
        messages = access(lines)
        return (
            any('"GET /admin/login/ HTTP/1.1" 200' in m for m in messages)
            and any(f'"GET {css_path} HTTP/1.1" 200' in m for m in messages)
            and any(line["logger"] == "gunicorn.error" for line in lines)
        )

    log = server_log(tmp_path, port, until=logged)
    assert any('"GET /admin/login/ HTTP/1.1" 200' in m for m in access(log))
    assert any(f'"GET {css_path} HTTP/1.1" 200' in m for m in access(log))
    assert any(line["logger"] == "gunicorn.error" for line in log)


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the pool is psycopg's (PostgreSQL)"
)
@pytest.mark.django_db
def test_the_connection_pool_serves_requests_when_asked_for():
    # Through the WSGI application, as a server calls it: each request ends by
    # giving its connection back (the test client would keep it).
    script = textwrap.dedent(
        """
        import json, wsgiref.util
        from webhookproject.wsgi import application
        from django.db import connection

        def get():
            environ = {"PATH_INFO": "/healthz", "REQUEST_METHOD": "GET"}
            wsgiref.util.setup_testing_defaults(environ)
            seen = []
            b"".join(application(environ, lambda status, headers: seen.append(status)))
            return int(seen[0][:3])

        statuses = [get() for _ in range(3)]
        print(json.dumps({
            "statuses": statuses,
            "max": connection.pool.max_size,
            "requests": connection.pool.get_stats().get("requests_num", 0),
            "conn_max_age": connection.settings_dict["CONN_MAX_AGE"],
        }))
        """
    )
    result = subprocess.run(  # noqa: S603 - our interpreter, our script
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=clean_env(
            DATABASE_URL=database_url(),
            DJANGO_DB_POOL="true",
            DJANGO_DB_POOL_MAX_SIZE="3",
            DJANGO_SECURE_SSL_REDIRECT="false",
            DJANGO_LOG_LEVEL="CRITICAL",
        ),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["statuses"] == [200, 200, 200]
    assert answer["max"] == 3
    assert answer["requests"] >= 3  # each request took a connection from the pool
    assert answer["conn_max_age"] == 0


def test_an_unmigrated_database_says_so_everywhere(tmp_path):
    script = textwrap.dedent(
        """
        import django, json
        django.setup()
        from django.test import Client
        client = Client(HTTP_HOST="localhost", raise_request_exception=False)
        health = client.get("/healthz")
        admin = client.post("/admin/login/", {"username": "a", "password": "b"})
        webhook = client.post("/webhooks/demo/", b"{}", content_type="application/json")
        print(json.dumps({
            "health": [health.status_code, health.json()],
            "admin": [admin.status_code, admin.content.decode()],
            "webhook": [webhook.status_code, webhook.json()],
        }))
        """
    )
    result = subprocess.run(  # noqa: S603 - our interpreter, our script
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=clean_env(
            DATABASE_URL=f"sqlite:///{tmp_path / 'never-migrated.sqlite3'}",
            DJANGO_DEBUG="true",
            DJANGO_LOG_LEVEL="CRITICAL",
        ),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    answer = json.loads(result.stdout.strip().splitlines()[-1])
    status, body = answer["health"]
    assert status == 503
    assert body["migrated"] is False
    assert "manage.py migrate" in body["detail"]
    status, text = answer["admin"]
    assert status == 503
    assert "manage.py migrate" in text
    status, body = answer["webhook"]
    assert (status, body["error"]) == (503, "not_migrated")

"""Real servers on the embedded database: what `make run` serves, and gunicorn.

Each test runs its server in a subprocess on its own SQLite file, migrated
for it, and talks HTTP to it: chunked bodies (which Django's test client
cannot send), a NUL in a Content-Type (which crashed Django's request
parsing before any middleware), and many deliveries at once, large and
small, that must all be answered 2xx and all be stored.
"""

from __future__ import annotations

import http.client
import json
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from submissions.tokens import sign_token
from tests.webhookproject.test_serving import ROOT, clean_env, free_port

CREATE_BOT = (
    "from submissions.models import Bot;"
    "print(Bot.objects.create(name='Embedded', slug='embedded').secret)"
)


@dataclass
class Server:
    port: int
    secret: str
    database: Path

    def rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        with sqlite3.connect(self.database) as db:
            return db.execute(sql, params).fetchall()


def _prepare_database(path: Path) -> tuple[dict[str, str], str]:
    env = clean_env(DATABASE_URL=f"sqlite:///{path}", DJANGO_DEBUG="true")
    for args in (["migrate", "-v", "0"], ["shell", "-v", "0", "-c", CREATE_BOT]):
        result = subprocess.run(  # noqa: S603 - our interpreter, our command
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
    return env, result.stdout.strip().splitlines()[-1]


def _wait_until_up(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, log.read_text()[-2000:]
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        assert time.monotonic() < deadline, "the server did not come up"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def start_server(tmp_path_factory) -> Iterator[Callable[[str], Server]]:
    processes: list[subprocess.Popen] = []

    def start(kind: str) -> Server:
        folder = tmp_path_factory.mktemp(kind)
        database = folder / "db.sqlite3"
        env, secret = _prepare_database(database)
        port = free_port()
        if kind == "runserver":
            command = ["manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
        else:
            command = ["-m", "gunicorn", "-c", "gunicorn.conf.py"]
            env |= {
                "GUNICORN_BIND": f"127.0.0.1:{port}",
                "GUNICORN_WORKERS": "2",
                "DJANGO_DEBUG": "false",
                "DJANGO_SECURE_SSL_REDIRECT": "false",
                "DJANGO_STATICFILES_STORAGE": (
                    "django.contrib.staticfiles.storage.StaticFilesStorage"
                ),
            }
        log = folder / "server.log"
        process = subprocess.Popen(  # noqa: S603 - our interpreter, our command
            [sys.executable, *command],
            cwd=ROOT,
            env=env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
        )
        processes.append(process)
        _wait_until_up(port, process, log)
        return Server(port=port, secret=secret, database=database)

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def runserver(start_server) -> Server:
    return start_server("runserver")


@pytest.fixture(scope="module")
def gunicorn(start_server) -> Server:
    return start_server("gunicorn")


def _body(delivery_id: str, pad: int = 0) -> bytes:
    payload = {
        "handler": "save-form",
        "id": delivery_id,
        "formValues": {"name": "Ada", "note": "x" * pad},
    }
    return json.dumps(payload).encode()


def post(
    server: Server,
    body: bytes,
    *,
    path: str = "/webhooks/embedded/",
    chunks: int = 0,
    content_type: str = "application/json",
) -> tuple[int, dict[str, str], bytes]:
    """POST ``body``, in ``chunks`` chunks (Transfer-Encoding: chunked) if given."""
    token = sign_token(server.secret, body=body)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.putrequest("POST", path, skip_accept_encoding=True)
        conn.putheader("Authorization", f"Bearer {token}")
        conn.putheader("Content-Type", content_type)
        if chunks:
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            size = -(-len(body) // chunks)
            for start in range(0, len(body), size):
                piece = body[start : start + size]
                conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
            conn.send(b"0\r\n\r\n")
        else:
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders()
            conn.send(body)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def _stored_answers(server: Server, event_id: str) -> list[tuple]:
    return server.rows(
        "SELECT a.key, a.value FROM submissions_formanswer a "
        "JOIN submissions_formsubmission s ON s.id = a.submission_id "
        "WHERE s.event_id = ? ORDER BY a.position",
        (int(event_id),),
    )


@pytest.mark.parametrize("kind", ["runserver", "gunicorn"])
@pytest.mark.parametrize("chunks", [1, 3, 40])
@pytest.mark.parametrize("path", ["/webhooks/embedded/", "/webhooks/embedded"])
def test_a_chunked_body_is_read_and_its_answers_stored(request, kind, chunks, path):
    server = request.getfixturevalue(kind)
    body = _body(f"chunked-{kind}-{chunks}-{path[-1]}", pad=2000)

    status, headers, reply = post(server, body, path=path, chunks=chunks)

    assert status == 200, reply[:300]
    event_id = headers["X-Webhook-Event-Id"]
    ((status_stored, size),) = server.rows(
        "SELECT status, body_size FROM submissions_webhookevent WHERE id = ?",
        (int(event_id),),
    )
    assert (status_stored, size) == ("processed", len(body))
    assert [key for key, _ in _stored_answers(server, event_id)] == ["name", "note"]


@pytest.mark.parametrize("kind", ["runserver", "gunicorn"])
def test_a_chunked_body_over_the_cap_is_413_and_stored(request, kind):
    server = request.getfixturevalue(kind)
    body = _body("too-big-" + kind, pad=1024 * 1024)

    status, headers, reply = post(server, body, chunks=8)

    assert status == 413
    assert json.loads(reply)["error"] == "payload_too_large"
    ((stored,),) = server.rows(
        "SELECT status FROM submissions_webhookevent WHERE id = ?",
        (int(headers["X-Webhook-Event-Id"]),),
    )
    assert stored == "rejected"


@pytest.mark.parametrize("kind", ["runserver", "gunicorn"])
@pytest.mark.parametrize(
    ("content_type", "query"),
    [
        ("application/json; charset=utf\x008", ""),  # runserver passes NUL on
        ("application/json; charset*=bogus''x", ""),  # RFC 2231, unknown charset
        ("application/json; charset*=utf-8''rot13", ""),
        ("application/json; charset=rot13", "?x=1"),  # not a text encoding
        ("application/json; charset=zlib", "?x=1"),
        ("application/json; charset=no-such-charset", "?x=1"),
    ],
)
def test_a_content_type_django_cannot_parse_is_415_and_stored(
    request, kind, content_type, query
):
    server = request.getfixturevalue(kind)
    if kind == "gunicorn" and "\x00" in content_type:
        pytest.skip("gunicorn refuses a NUL in a header itself (400, never the app)")
    status, headers, reply = post(
        server,
        _body(f"ct-{kind}-{content_type}{query}"),
        path=f"/webhooks/embedded/{query}",
        content_type=content_type,
    )

    assert status == 415, reply[:300]
    assert json.loads(reply)["error"] == "unsupported_media_type"
    ((stored, stored_headers),) = server.rows(
        "SELECT status, headers FROM submissions_webhookevent WHERE id = ?",
        (int(headers["X-Webhook-Event-Id"]),),
    )
    assert stored == "rejected"
    shown = json.loads(stored_headers)["Content-Type"]
    assert shown == content_type.replace("\x00", "\ufffd")


@pytest.mark.parametrize("kind", ["runserver", "gunicorn"])
@pytest.mark.parametrize(
    "raw",
    [
        b"zz\r\n{}\r\n0\r\n\r\n",
        b"0x2\r\n{}\r\n0\r\n\r\n",
        b"-1\r\n{}\r\n0\r\n\r\n",
        b"1\r\n{}\r\n0\r\n\r\n",
        b"5\r\n{}\r\n0\r\n\r\n",
    ],
)
def test_malformed_chunks_are_400_and_stored(request, kind, raw):
    server = request.getfixturevalue(kind)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.putrequest("POST", "/webhooks/embedded/", skip_accept_encoding=True)
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    conn.send(raw)
    response = conn.getresponse()
    reply = response.read()
    conn.close()

    assert response.status == 400, reply[:300]
    assert json.loads(reply)["error"] == "invalid_chunked_body"
    ((stored,),) = server.rows(
        "SELECT status FROM submissions_webhookevent WHERE id = ?",
        (int(response.getheader("X-Webhook-Event-Id")),),
    )
    assert stored == "rejected"


@pytest.mark.parametrize("kind", ["runserver", "gunicorn"])
def test_many_long_header_values_are_answered_and_stored(request, kind):
    # Redaction scans values in linear time, and redacts an overlong one whole.
    server = request.getfixturevalue(kind)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    conn.putrequest("POST", "/webhooks/embedded/", skip_accept_encoding=True)
    for n in range(12):
        conn.putheader(f"X-Pad{n}", "a" * 8000 if n % 2 else "a." * 4000)
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", "2")
    conn.endheaders()
    conn.send(b"{}")
    response = conn.getresponse()
    reply = response.read()
    conn.close()

    assert response.status == 401, reply[:300]
    ((stored,),) = server.rows(
        "SELECT headers FROM submissions_webhookevent WHERE id = ?",
        (int(response.getheader("X-Webhook-Event-Id")),),
    )
    assert json.loads(stored)["X-Pad1"] == "a" * 8000


def test_the_development_servers_access_log_escapes_control_characters(runserver):
    with socket.create_connection(("127.0.0.1", runserver.port), timeout=30) as sock:
        sock.sendall(
            b"GET /webhooks/embedded/?\x1b[2K\x1b[1AFAKE HTTP/1.1\r\n"
            b"Host: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        assert sock.recv(100).startswith(b"HTTP/1.1 405")
        while sock.recv(4096):  # read to the end: the access line comes after
            pass
    deadline = time.monotonic() + 10
    while "FAKE" not in (log := (runserver.database.parent / "server.log").read_text()):
        assert time.monotonic() < deadline, log[-500:]
        time.sleep(0.1)
    assert "\x1b" not in log
    assert "\\x1b[2K" in log


#: Longer than SQLite's default busy timeout (5 s), shorter than ours (20 s).
READER_SECONDS = 7


@pytest.mark.parametrize("kind", ["runserver", "gunicorn"])
def test_many_deliveries_at_once_on_sqlite_are_all_answered_and_stored(request, kind):
    server = request.getfixturevalue(kind)
    # Large bodies hold the write lock longest; small ones queue behind them.
    bodies = [
        _body(f"burst-{kind}-{n}", pad=900_000 if n % 4 == 0 else 100)
        for n in range(24)
    ]
    # Meanwhile a reader holds a read transaction, as a long export does:
    # without WAL no writer could commit until it ends.
    reader = sqlite3.connect(server.database, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT COUNT(*) FROM submissions_formanswer").fetchall()
    started = time.monotonic()

    with ThreadPoolExecutor(max_workers=25) as pool:
        pending = [pool.submit(post, server, body) for body in bodies]
        time.sleep(READER_SECONDS)
        reader.execute("COMMIT")
        reader.close()
        answers = [future.result() for future in pending]
    assert time.monotonic() - started >= READER_SECONDS

    assert [status for status, _, _ in answers] == [200] * len(bodies), [
        reply[:200] for status, _, reply in answers if status != 200
    ]
    ids = [int(headers["X-Webhook-Event-Id"]) for _, headers, _ in answers]
    marks = ",".join("?" * len(ids))
    stored = server.rows(
        "SELECT status, COUNT(*) FROM submissions_webhookevent "  # noqa: S608
        f"WHERE id IN ({marks}) GROUP BY status",
        tuple(ids),
    )
    assert stored == [("processed", len(bodies))]
    ((submissions,),) = server.rows(
        f"SELECT COUNT(*) FROM submissions_formsubmission WHERE event_id IN ({marks})",  # noqa: S608
        tuple(ids),
    )
    assert submissions == len(bodies)

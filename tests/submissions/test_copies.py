"""Copies of one delivery sent at once to a real gunicorn: one run, one reply for all.

The platform may read whichever copy answers; each copy that finds its
original still running waits for the original's reply (polling, holding
no connection or lock between reads) and answers with it. On SQLite (a
file, as `make run` serves) and on PostgreSQL (the suite's database).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.db import connection

from submissions.tokens import sign_token
from tests.submissions.test_embedded_servers import _wait_until_up
from tests.webhookproject.test_serving import (
    ROOT,
    clean_env,
    database_url,
    free_port,
    request,
)

pytestmark = pytest.mark.django_db(transaction=True)

CREATE_BOT = (
    "from submissions.models import Bot;"
    "print(Bot.objects.create(name='Copies', slug='copies').secret)"
)


def _manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(  # noqa: S603 - our interpreter, our command
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[int, str, Callable[[str], int]]]:
    """gunicorn (two workers) with the bench handlers, on this run's database:
    its port, the bot's secret, and a count of rows by SQL."""
    if connection.vendor == "postgresql":
        url = database_url()

        def count(sql: str) -> int:
            with connection.cursor() as cursor:
                cursor.execute(sql)
                return cursor.fetchone()[0]
    else:
        path = tmp_path / "db.sqlite3"
        url = f"sqlite:///{path}"

        def count(sql: str) -> int:
            with sqlite3.connect(path) as db:
                return db.execute(sql).fetchone()[0]

    env = clean_env(
        DATABASE_URL=url,
        DJANGO_SETTINGS_MODULE="bench.settings",
        DJANGO_STATICFILES_STORAGE="django.contrib.staticfiles.storage.StaticFilesStorage",
    )
    _manage(env, "migrate", "-v", "0")  # the bench app's table too, for /healthz
    secret = _manage(env, "shell", "-v", "0", "-c", CREATE_BOT)
    port = free_port()
    log = tmp_path / "gunicorn.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"],
        cwd=ROOT,
        env=env | {"GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "2"},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_until_up(port, process, log)
        yield port, secret, count
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_eight_copies_in_flight_all_get_the_originals_reply(server):
    port, secret, count = server
    body = json.dumps(
        {"handler": "bench-wait-300ms", "id": "one-id", "formValues": {"q": "a"}}
    ).encode()
    headers = {
        "Authorization": f"Bearer {sign_token(secret, body=body)}",
        "Content-Type": "application/json",
    }
    copies = 8
    barrier = threading.Barrier(copies)

    def post(_: int) -> tuple[int, dict[str, str], bytes]:
        barrier.wait()
        return request(port, "POST", "/webhooks/copies/", body, headers)

    with ThreadPoolExecutor(copies) as pool:
        answers = list(pool.map(post, range(copies)))

    statuses = [status for status, _, _ in answers]
    replies = [json.loads(raw) for _, _, raw in answers]
    assert statuses == [200] * copies, answers
    assert all(reply == replies[0] for reply in replies)  # as JSON (jsonb orders keys)
    assert replies[0]["blocks"] == [{"type": "text", "text": "Done with one-id."}]
    events = "SELECT count(*) FROM submissions_webhookevent"
    assert count(f"{events} WHERE status = 'processed'") == 1
    assert count(f"{events} WHERE status = 'duplicate'") == copies - 1
    assert count(f"{events} WHERE status = 'duplicate' AND response_status = 200") == 7
    assert count("SELECT count(*) FROM submissions_formsubmission") == 1
    assert count("SELECT count(*) FROM submissions_handlerrun") == 1

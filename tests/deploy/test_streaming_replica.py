"""A real streaming replica (bench/rig.py's clusters): staff reads on it, fallback.

A temporary primary (``initdb``) and its replica (``pg_basebackup -R``), run
as ``postgres``; a gunicorn with ``DATABASE_REPLICA_URL`` at the replica.
The admin's reads show in the replica's ``pg_stat_activity``; a replica
whose replay is paused while the primary moves on is left for the primary
and taken back when it catches up; a stopped one is fallen back from
without an error page.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from django.db import connection

from bench.rig import PG_BIN, chown_postgres, clusters, sql
from submissions.tokens import sign_token
from tests.servers import ROOT, Gunicorn, clean_env, request

DATABASE = "webhooks_rig"

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="streaming replication is PostgreSQL's: the PostgreSQL run of the suite",
    ),
    pytest.mark.skipif(
        not (PG_BIN / "pg_basebackup").exists(),
        reason=f"{PG_BIN}/pg_basebackup is missing (Debian's postgresql-15)",
    ),
    pytest.mark.skipif(
        os.geteuid() != 0,
        reason="runs PostgreSQL as postgres through runuser: needs root",
    ),
]

SETUP = """
import django, json; django.setup()
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore
from submissions.models import Bot
bot = Bot.objects.create(name="Streamed", slug="streamed")
user = get_user_model().objects.create_superuser("ops", "ops@example.com", "pw-0123456789")
s = SessionStore()
s[SESSION_KEY] = str(user.pk)
s[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
s[HASH_SESSION_KEY] = user.get_session_auth_hash()
s.create()
print(json.dumps([bot.secret, s.session_key]))
"""


@pytest.fixture(scope="module")
def replicated():
    workdir = Path(tempfile.mkdtemp(prefix="replica-test-"))
    workdir.chmod(0o755)
    chown_postgres(workdir)
    primary, replica = clusters(workdir)
    try:
        sql(primary, f"CREATE DATABASE {DATABASE}")
        env = clean_env(DATABASE_URL=primary.url(), DJANGO_LOG_LEVEL="CRITICAL")
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=ROOT,
            env=env,
            check=True,
            timeout=300,
        )
        result = subprocess.run(  # noqa: S603 - our interpreter, our script
            [sys.executable, "-c", SETUP],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        secret, session = json.loads(result.stdout.strip().splitlines()[-1])
        yield primary, replica, secret, session, workdir
    finally:
        for cluster in (replica, primary):
            if cluster.running():
                cluster.stop("immediate")
        shutil.rmtree(workdir, ignore_errors=True)


def until(predicate, what: str, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, what
        time.sleep(0.2)
    return value


def test_staff_reads_go_to_the_streaming_replica_and_fall_back(replicated, tmp_path):
    primary, replica, secret, session, _ = replicated
    server = Gunicorn(
        tmp_path,
        DATABASE_URL=primary.url(),
        DATABASE_REPLICA_URL=replica.url(
            connect_timeout="2", application_name="staff-replica"
        ),
        DATABASE_REPLICA_MAX_LAG_SECONDS="1",
        DATABASE_REPLICA_CHECK_SECONDS="0.2",
        DJANGO_STATICFILES_STORAGE="django.contrib.staticfiles.storage.StaticFilesStorage",
        GUNICORN_WORKERS="1",
    )
    staff = {"Cookie": f"sessionid={session}"}
    changelist = "/admin/submissions/webhookevent/"

    def deliver(n: int) -> int:
        body = json.dumps(
            {"handler": "save-form", "id": f"r-{n}", "formValues": {"n": str(n)}}
        ).encode()
        return request(
            server.port,
            "POST",
            "/webhooks/streamed/",
            body,
            {
                "Authorization": f"Bearer {sign_token(secret, body=body)}",
                "Content-Type": "application/json",
            },
        )[0]

    def replica_state() -> dict:
        return json.loads(request(server.port, "GET", "/readyz")[2])["replica"]

    try:
        assert deliver(1) == 200
        until(
            lambda: (
                sql(
                    replica,
                    "SELECT count(*) FROM submissions_webhookevent",
                    database=DATABASE,
                )[0][0]
                == 1
            ),
            "the replica never replayed the delivery",
        )
        status, _, page = request(server.port, "GET", changelist, headers=staff)
        assert status == 200
        assert "Streamed" in page.decode()
        reads = sql(
            replica,
            "SELECT query FROM pg_stat_activity WHERE application_name = %s",
            ("staff-replica",),
        )
        assert any("submissions_webhookevent" in q for (q,) in reads), reads
        assert replica_state()["reads"] == "replica"

        # Replay paused while the primary moves on: behind, so not read.
        sql(replica, "SELECT pg_wal_replay_pause()")
        assert deliver(2) == 200
        behind = until(
            lambda: (s := replica_state())["reads"] == "primary" and s,
            "a replica behind by more than 1 s was still read",
        )
        assert behind["reachable"] is True
        assert behind["lag_seconds"] >= 1  # rounded to 0.1 s
        status, _, page = request(server.port, "GET", changelist, headers=staff)
        assert status == 200
        # Read on the primary: the delivery the paused replica has not replayed.
        assert "/admin/submissions/webhookevent/2/change/" in page.decode()
        sql(replica, "SELECT pg_wal_replay_resume()")
        until(
            lambda: replica_state()["reads"] == "replica",
            "the replica was not read again once it caught up",
        )

        # Stopped: the next read falls back, no error page.
        replica.stop()
        status, _, page = request(server.port, "GET", changelist, headers=staff)
        assert status == 200
        assert "Streamed" in page.decode()
        assert replica_state() == {
            "reads": "primary",
            "reachable": False,
            "lag_seconds": None,
            "max_lag_seconds": 1.0,
        }
        replica.start()
        until(
            lambda: replica_state()["reads"] == "replica",
            "the restarted replica was not read again",
        )
    finally:
        server.stop()
        if not replica.running():
            replica.start()

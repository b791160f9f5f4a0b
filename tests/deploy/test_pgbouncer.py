"""Everything through a real PgBouncer in transaction mode (deploy/pgbouncer/pgbouncer.ini).

A gunicorn with DATABASE_URL at PgBouncer and DJANGO_DB_TRANSACTION_POOLER
on answers deliveries (at once, more of them than PgBouncer has server
connections), a CSV export, an admin page and /readyz?task=1, and stores
everything; PgBouncer's own console shows the transactions went through it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from rest_framework.authtoken.models import Token

from submissions.models import FormAnswer, FormSubmission, WebhookEvent
from submissions.tokens import sign_token
from tests.deploy.kit import PGBOUNCER, pgbouncer_running
from tests.factories import BotFactory
from tests.servers import Gunicorn, free_port, request

pytestmark = [
    pytest.mark.skipif(
        not os.path.exists(PGBOUNCER),
        reason=f"{PGBOUNCER} is missing (scripts/install-services.sh installs it)",
    ),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="PgBouncer pools PostgreSQL: the PostgreSQL run of the suite",
    ),
    pytest.mark.skipif(
        not shutil.which("psql"), reason="psql reads PgBouncer's console"
    ),
]


def console(port: int, command: str) -> list[list[str]]:
    result = subprocess.run(  # noqa: S603 - psql, PgBouncer's admin console
        [  # noqa: S607 - the machine's psql
            "psql",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            "postgres",
            "-d",
            "pgbouncer",
            "-AF",
            "\t",
            "-c",
            command,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    lines = result.stdout.strip().splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"), strict=False)) for line in lines[1:-1]]


def pg_ready(port: int) -> None:
    deadline = time.monotonic() + 30
    command = ["pg_isready", "-q", "-h", "127.0.0.1", "-p", str(port)]
    while subprocess.run(command, check=False).returncode != 0:  # noqa: S603
        assert time.monotonic() < deadline, "pgbouncer did not come up"
        time.sleep(0.2)


@pytest.mark.django_db(transaction=True)
def test_everything_works_through_pgbouncer_in_transaction_mode(tmp_path):
    db = settings.DATABASES["default"]
    name = db["NAME"]
    bot = BotFactory(slug="pooled")
    user = get_user_model().objects.create_superuser(
        "ops", "ops@example.com", "pw-0123456789"
    )
    api_token = Token.objects.create(user=user).key
    staff = Client()
    staff.force_login(user)
    session = staff.cookies[settings.SESSION_COOKIE_NAME].value

    port = free_port()
    with pgbouncer_running(
        port=port, database=name, upstream_port=int(db.get("PORT") or 5432)
    ):
        pg_ready(port)
        server = Gunicorn(
            tmp_path,
            DATABASE_URL=f"postgres://postgres@127.0.0.1:{port}/{name}",
            DJANGO_DB_TRANSACTION_POOLER="true",
            DJANGO_STATICFILES_STORAGE="django.contrib.staticfiles.storage.StaticFilesStorage",
            GUNICORN_WORKERS="2",
        )
        try:

            def post(n: int) -> tuple[int, dict, bytes]:
                body = json.dumps(
                    {
                        "handler": "save-form",
                        "id": f"pgb-{n}",
                        "formValues": {"email": f"p{n}@example.com", "n": str(n)},
                    }
                ).encode()
                return request(
                    server.port,
                    "POST",
                    "/webhooks/pooled/",
                    body,
                    {
                        "Authorization": f"Bearer {sign_token(bot.secret, body=body)}",
                        "Content-Type": "application/json",
                    },
                )

            # More deliveries at once than PgBouncer's 20 server connections.
            with ThreadPoolExecutor(max_workers=8) as threads:
                answers = list(threads.map(post, range(40)))
            export = request(
                server.port,
                "GET",
                "/api/submissions/?format=csv",
                headers={"Authorization": f"Token {api_token}"},
            )
            admin = request(
                server.port,
                "GET",
                "/admin/submissions/webhookevent/",
                headers={"Cookie": f"{settings.SESSION_COOKIE_NAME}={session}"},
            )
            ready = request(server.port, "GET", "/readyz?task=1")
            stats = [s for s in console(port, "SHOW STATS") if s["database"] == name]
            pools = [p for p in console(port, "SHOW POOLS") if p["database"] == name]
        finally:
            server.stop()

    assert [status for status, _, _ in answers] == [200] * 40
    assert WebhookEvent.objects.filter(status="processed").count() == 40
    assert FormSubmission.objects.count() == 40
    assert FormAnswer.objects.count() == 80
    for _status, headers, body in answers:
        event = WebhookEvent.objects.get(pk=headers["X-Webhook-Event-Id"])
        assert json.loads(body) == event.response_body

    status, headers, csv = export
    assert status == 200, csv[:500]
    assert headers["Content-Type"].startswith("text/csv")
    rows = csv.decode().strip().splitlines()
    assert len(rows) == 41  # the header and every submission
    assert all(f"p{n}@example.com" in csv.decode() for n in range(40))

    status, _, page = admin
    assert status == 200
    text = page.decode()
    assert "Select webhook event" in text
    assert bot.name in text  # the rows, read through PgBouncer
    assert (
        "/admin/submissions/webhookevent/" + str(WebhookEvent.objects.first().pk)
        in text
    )

    status, _, body = ready
    assert status == 200, body
    assert json.loads(body)["tasks"]["queue"] is True

    # It was PgBouncer, in transaction mode, that carried them.
    assert pools
    assert pools[0]["pool_mode"] == "transaction"
    assert int(stats[0]["total_xact_count"]) >= 40

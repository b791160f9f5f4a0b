"""Where one delivery's time goes: pyinstrument over N deliveries, in process.

    .venv/bin/python bench/profile_intake.py [--requests 500] [--conn-max-age S]

Posts signed deliveries (as ``bench/intake.py`` does) through Django's test
client to the real endpoint on ``webhooks_bench_profile`` (PostgreSQL,
recreated), after 50 unprofiled warm-up requests. Django closes the database
connection after each request unless ``CONN_MAX_AGE`` says otherwise, as
under gunicorn. Counts the SQL queries of one delivery and writes the
profile to ``bench/results/profile_intake.txt`` (and ``.html``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    RESULTS,
    database_recreate,
    database_url,
    django_setup,
    manage,
    say,
    write_results,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--conn-max-age", type=int, default=None)
    parser.add_argument(
        "--database-url", default=database_url("webhooks_bench_profile")
    )
    args = parser.parse_args(argv)
    database_recreate(args.database_url)
    manage(args.database_url, "migrate", "--noinput")
    os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")  # one line per delivery
    django_setup(args.database_url)
    from django.conf import settings
    from django.core.signals import request_started
    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from pyinstrument import Profiler

    from handlers.wire import build_payload
    from submissions.models import Bot
    from submissions.tokens import sign_token

    if args.conn_max_age is not None:
        settings.DATABASES["default"]["CONN_MAX_AGE"] = args.conn_max_age
        connection.settings_dict["CONN_MAX_AGE"] = args.conn_max_age
    settings.ALLOWED_HOSTS = ["testserver"]
    bot = Bot.objects.create(name="Profile", slug="profile")
    client = Client()

    def post(index: int):
        payload = build_payload(
            handler_name="soak-ok",
            form_values={
                "name": f"User {index}",
                "email": "u@example.com",
                "rating": 4,
            },
            conversation_id="c-1",
            user_id=f"u-{index}",
            delivery_id=f"profile-{index}",
        )
        body = json.dumps(payload, separators=(",", ":")).encode()
        token = sign_token(bot.secret, body=body)
        response = client.post(
            "/webhooks/profile/",
            data=body,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )
        assert response.status_code == 200, response.content  # noqa: S101
        return response

    for index in range(50):
        post(index)
    # Django empties the query log when a request starts; keep it for this one.
    request_started.disconnect(reset_queries)
    with CaptureQueriesContext(connection) as queries:
        post(10_000)
    request_started.connect(reset_queries)
    say(f"queries in one delivery: {len(queries)}")
    for query in queries.captured_queries:
        say(f"  {query['sql'][:110]}")
    profiler = Profiler(interval=0.0005)
    started = time.perf_counter()
    profiler.start()
    for index in range(args.requests):
        post(20_000 + index)
    profiler.stop()
    elapsed = time.perf_counter() - started
    per_request = elapsed / args.requests * 1000
    say(f"{args.requests} deliveries in {elapsed:.2f} s: {per_request:.2f} ms each")
    text = profiler.output_text(unicode=False, color=False, show_all=False)
    suffix = "" if args.conn_max_age is None else f"_cma{args.conn_max_age}"
    (RESULTS / f"profile_intake{suffix}.txt").write_text(text)
    (RESULTS / f"profile_intake{suffix}.html").write_text(profiler.output_html())
    write_results(
        f"profile_intake{suffix}",
        {
            "requests": args.requests,
            "conn_max_age": settings.DATABASES["default"]["CONN_MAX_AGE"],
            "ms_per_delivery": round(per_request, 3),
            "queries_per_delivery": len(queries),
            "queries": [q["sql"][:200] for q in queries.captured_queries],
        },
    )
    say(text[:6000])
    return 0


if __name__ == "__main__":
    sys.exit(main())

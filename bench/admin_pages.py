"""Server time and queries of the admin's changelists at a million events.

    .venv/bin/python bench/admin_pages.py [--runs 7] [--database URL]

On the seeded ``webhooks_bench_1m`` (``bench/datasets.py``), or on the
database at ``--database`` as it is (``bench/partitions.py`` passes its
ten-million-event one), logged in as a
superuser through Django's test client (the whole middleware stack and the
admin view, no network), each page is fetched once to warm up, then
``--runs`` times; reports the median server time, the slowest run and the
number of SQL queries (``CaptureQueriesContext``). Writes
``bench/results/admin.json``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import quote, urlencode

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, django_setup, say, write_results
from bench.datasets import dataset, dataset_url

EVENTS = "/admin/submissions/webhookevent/"
SUBMISSIONS = "/admin/submissions/formsubmission/"
RUNS = "/admin/submissions/handlerrun/"


def pages(*, bot_id: int, conversation: str, email: str) -> list[tuple[str, str]]:
    return [
        ("events: first page", EVENTS),
        ("events: status failed", EVENTS + "?status__exact=failed"),
        (
            "events: one bot, handler",
            f"{EVENTS}?bot__id__exact={bot_id}&handler_name=feedback",
        ),
        (
            "events: past 7 days",
            EVENTS + "?" + urlencode({"received_at__gte": "{week}"}),
        ),
        ("events: search conversation", EVENTS + "?" + urlencode({"q": conversation})),
        ("events: page 50", EVENTS + "?p=50"),
        ("submissions: first page", SUBMISSIONS),
        ("submissions: one bot", f"{SUBMISSIONS}?bot__id__exact={bot_id}"),
        ("submissions: handler", SUBMISSIONS + "?handler_name=signup"),
        (
            "submissions: search conversation",
            SUBMISSIONS + "?" + urlencode({"q": conversation}),
        ),
        ("submissions: search answer text (common)", SUBMISSIONS + "?q=invoice"),
        (
            "submissions: search answer text (one match)",
            SUBMISSIONS + "?" + urlencode({"q": email}),
        ),
        ("handler runs: first page", RUNS),
        ("handler runs: failed", RUNS + "?outcome__exact=failed"),
        ("console: overview (30 days)", "/admin/overview/"),
        ("console: forms list", "/admin/forms/"),
        ("console: one form as a table", f"/admin/forms/{bot_id}/signup/"),
        (
            "console: one form, past 7 days",
            f"/admin/forms/{bot_id}/signup/?" + urlencode({"since": "{week_day}"}),
        ),
        (
            "console: one form, search answer text",
            f"/admin/forms/{bot_id}/signup/?" + urlencode({"q": email}),
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--submissions", type=int, default=1_000_000)
    parser.add_argument(
        "--database",
        help="Time the pages on this PostgreSQL URL as it is (no seeding; "
        "bench/partitions.py passes its ten-million-event database).",
    )
    parser.add_argument(
        "--no-tallies",
        action="store_true",
        help="Time the console without its tallies (every row read, as before "
        "them); by default they are counted first, as the scheduled task does.",
    )
    parser.add_argument(
        "--keep-tallies",
        action="store_true",
        help="Count only what is new since the tallies an earlier run counted "
        "(by default they are counted again from every row, timed).",
    )
    args = parser.parse_args(argv)
    # Django first, on the database timed: seeding asks it for the event count.
    url = args.database or dataset_url(args.submissions)
    django_setup(url)
    if not args.database:
        dataset(args.submissions)
    from datetime import timedelta

    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from submissions.models import Bot, FormSubmission, WebhookEvent
    from submissions.services.tallies import tallies_count, tallies_rebuild

    settings.ALLOWED_HOSTS = ["testserver"]
    call_command("migrate", verbosity=0)  # a database an older release made
    if not args.keep_tallies:
        tallies_rebuild()
    tallied = {"counted": False}
    if not args.no_tallies:
        started = time.perf_counter()
        report = tallies_count()
        tallied = {
            "counted": True,
            "from_every_row": not args.keep_tallies,
            "seconds": round(time.perf_counter() - started, 1),
            "submissions": report.submissions,
            "events": report.events,
        }
        say(
            f"tallies counted ({'new rows' if args.keep_tallies else 'every row'}): "
            f"{report.submissions:,} submissions, "
            f"{report.events:,} events in {tallied['seconds']} s"
        )
    user, _ = get_user_model().objects.get_or_create(
        username="bench-admin", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(user)
    bot_id = Bot.objects.order_by("pk").values_list("pk", flat=True)[1]
    submissions = FormSubmission.objects.count()
    middle = FormSubmission.objects.order_by("pk")[submissions // 2]
    conversation = middle.conversation_id
    email = middle.answers.get(key="email").value_text
    # As the admin's own "Past 7 days" link writes it: midnight, with its offset.
    midnight = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    week = quote((midnight - timedelta(days=7)).isoformat(sep=" "))
    week_day = (midnight - timedelta(days=7)).date().isoformat()  # the form's filter
    total = WebhookEvent.objects.order_by("-pk").values_list("pk", flat=True).first()
    say(f"events up to #{total:,}; timing {args.runs} runs per page")
    results = []
    for name, path in pages(bot_id=bot_id, conversation=conversation, email=email):
        path = path.replace("%7Bweek%7D", week).replace("%7Bweek_day%7D", week_day)
        response = client.get(path)  # warm-up: templates, caches
        if response.status_code != 200:
            raise RuntimeError(f"{path}: HTTP {response.status_code}")
        times = []
        for _ in range(args.runs):
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                response = client.get(path)
                times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200  # noqa: S101
        rows = response.content.count(b'name="_selected_action"') or (
            response.content.count(b"<tr") - 1  # the console's tables
        )
        result = {
            "page": name,
            "path": path,
            "median_ms": round(statistics.median(times), 1),
            "max_ms": round(max(times), 1),
            "queries": len(queries),
            "rows_shown": rows,
        }
        results.append(result)
        say(
            f"  {name:<45} {result['median_ms']:>8.1f} ms (max {result['max_ms']:.1f})"
            f"  {result['queries']:>2} queries  {rows} rows"
        )
    path = write_results(
        "admin",
        {
            "command": "bench/admin_pages.py " + " ".join(argv or sys.argv[1:]),
            "database": url.rsplit("/", 1)[-1],
            "submissions": submissions,
            "events": WebhookEvent.objects.count(),
            "runs": args.runs,
            "tallies": tallied,
            "pages": results,
        },
    )
    say(f"results: {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

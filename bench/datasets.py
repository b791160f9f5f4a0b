"""The seeded benchmark databases: made once with ``seed_events``, then reused.

``dataset(submissions)`` returns the URL of ``webhooks_bench_<size>``, holding
exactly that many form submissions (five answers each); an existing database
with the right counts is kept, anything else is dropped and seeded again.
"""

from __future__ import annotations

import time

from bench.common import (
    database_exists,
    database_recreate,
    database_url,
    django_setup,
    manage,
    query_one,
    say,
)

ANSWERS = 5
NAMES = {10_000: "10k", 100_000: "100k", 1_000_000: "1m"}


def events_for(submissions: int) -> int:
    """The smallest event count that ``seed_events`` turns into ``submissions``."""
    from django.apps import apps

    if not apps.ready:  # a script that sets Django up itself does so first
        django_setup(database_url("postgres"))
    from bench.management.commands.seed_events import ACCEPTED, PATTERN

    per_run = sum(1 for slot in PATTERN if slot in ACCEPTED)
    runs, rest = divmod(submissions, per_run)
    count, made = runs * len(PATTERN), 0
    while made < rest:
        made += PATTERN[count % len(PATTERN)] in ACCEPTED
        count += 1
    return count


def dataset_url(submissions: int) -> str:
    """The URL of the dataset of ``submissions``, seeded or not."""
    return database_url(f"webhooks_bench_{NAMES.get(submissions, str(submissions))}")


def dataset(submissions: int) -> str:
    name = NAMES.get(submissions, str(submissions))
    url = dataset_url(submissions)
    if database_exists(url):
        have = query_one(url, "SELECT count(*) FROM submissions_formsubmission")
        answers = query_one(url, "SELECT count(*) FROM submissions_formanswer")
        if have == submissions and answers == submissions * ANSWERS:
            manage(url, "migrate", "--noinput")  # new indexes, if any
            say(f"dataset {name}: kept ({have:,} submissions)")
            return url
    events = events_for(submissions)
    say(f"dataset {name}: seeding {events:,} events ({submissions:,} submissions) ...")
    started = time.perf_counter()
    database_recreate(url)
    manage(url, "migrate", "--noinput")
    manage(url, "seed_events", "--count", str(events), "--answers", str(ANSWERS))
    say(f"dataset {name}: seeded in {time.perf_counter() - started:.0f} s")
    return url

"""Migration 0014 on a PostgreSQL database made by the release before it: every
row kept, in its month, children keyed by their event's time, ids carried on."""

import uuid
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from django.db import IntegrityError, connection, connections
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from submissions.services import partitions

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="the conversion rebuilds PostgreSQL's tables; SQLite's stay plain",
    ),
]

BEFORE = [("submissions", "0013_first_contact")]
AFTER = [("submissions", "0014_partitions")]


@contextmanager
def release_database():
    """A database of its own, migrated to 0013 (the release before partitions)."""
    name = f"conv_{uuid.uuid4().hex[:12]}"
    params = connection.get_connection_params()
    admin = {k: params[k] for k in ("host", "port", "user") if params.get(k)}
    with psycopg.connect(dbname="postgres", autocommit=True, **admin) as server:
        server.execute(f'CREATE DATABASE "{name}"')
    # Reachable as connections["release"] (for .using()), yet not a configured
    # alias: Django's test case allows it as a connection made on the fly.
    default = connections["default"]
    db = type(default)({**default.settings_dict, "NAME": name}, "release")
    connections._connections.release = db
    try:
        MigrationExecutor(connections["release"]).migrate(BEFORE)
        yield connections["release"]
    finally:
        db.close()
        del connections._connections.release
        with psycopg.connect(dbname="postgres", autocommit=True, **admin) as server:
            server.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def test_the_conversion_keeps_every_row_in_its_month():
    with release_database() as db:
        convert_and_check(db)


def convert_and_check(db):
    old = MigrationExecutor(db).loader.project_state(BEFORE).apps
    Bot = old.get_model("submissions", "Bot")
    Event = old.get_model("submissions", "WebhookEvent")
    Submission = old.get_model("submissions", "FormSubmission")
    Answer = old.get_model("submissions", "FormAnswer")
    Run = old.get_model("submissions", "HandlerRun")
    bot = Bot.objects.using("release").create(name="b", slug="b", secret="s" * 43)
    now = timezone.now()
    times = [now - timedelta(days=40 * n, hours=n) for n in range(4)]
    times.append(datetime(1990, 6, 1, tzinfo=UTC))  # before every month made
    events = []
    for n, when in enumerate(times):
        event = Event.objects.using("release").create(
            bot=bot, received_at=when, delivery_id=f"d-{n}", handler_name="h"
        )
        submission = Submission.objects.using("release").create(
            bot=bot, event=event, handler_name="h", submitted_at=when
        )
        for position in range(3):
            Answer.objects.using("release").create(
                submission=submission, position=position, key=f"k{position}"
            )
        Run.objects.using("release").create(
            event=event,
            attempt=1,
            handler_name="h",
            started_at=when + timedelta(seconds=1),
            finished_at=when + timedelta(seconds=2),
            duration_ms=1000,
            outcome="succeeded",
        )
        events.append(event)
    copy = Event.objects.using("release").create(
        bot=bot,
        received_at=now,
        delivery_id="d-1",
        duplicate_of=events[1],
        status="duplicate",
    )
    kept = Submission.objects.using("release").create(
        bot=bot, event=None, handler_name="h", submitted_at=now - timedelta(days=70)
    )
    counts = {}
    with db.cursor() as cursor:
        for table in partitions.TABLES:
            cursor.execute(f"SELECT count(*), max(id) FROM {table}")  # noqa: S608
            counts[table] = cursor.fetchone()

    MigrationExecutor(db).migrate(AFTER)

    assert partitions.is_partitioned("release")
    with db.cursor() as cursor:
        for table in partitions.TABLES:
            cursor.execute(f"SELECT count(*), max(id) FROM {table}")  # noqa: S608
            assert cursor.fetchone() == counts[table], table
        # Every child in its event's month, keyed by the event's time.
        for child, parent, column in (
            (partitions.SUBMISSIONS, partitions.EVENTS, "event_id"),
            (partitions.RUNS, partitions.EVENTS, "event_id"),
            (partitions.ANSWERS, partitions.SUBMISSIONS, "submission_id"),
        ):
            cursor.execute(
                f"SELECT count(*) FROM {child} c JOIN {parent} p ON p.id = c.{column} "  # noqa: S608
                "WHERE c.received_at <> p.received_at"
            )
            assert cursor.fetchone()[0] == 0, child
        cursor.execute(
            f"SELECT received_at FROM {partitions.SUBMISSIONS} WHERE id = %s",  # noqa: S608
            [kept.pk],
        )
        assert cursor.fetchone()[0] == kept.submitted_at  # no event: its own time
        cursor.execute(
            f"SELECT tableoid::regclass::text FROM {partitions.EVENTS} WHERE id = %s",  # noqa: S608
            [events[4].pk],
        )
        assert cursor.fetchone()[0] == f"{partitions.EVENTS}_before"
        cursor.execute(
            f"SELECT tableoid::regclass::text FROM {partitions.EVENTS} WHERE id = %s",  # noqa: S608
            [events[3].pk],
        )
        assert cursor.fetchone()[0] == partitions.month_name(
            partitions.EVENTS, partitions.month_start(times[3])
        )
        # New rows take ids after the old ones; a copy is still refused.
        insert = (
            f"INSERT INTO {partitions.EVENTS} (bot_id, received_at, handler_name, "  # noqa: S608
            "status, error_code, error_detail, traceback, headers, raw_body, "
            "body_truncated, body_size, body_sha256, delivery_id, conversation_id, "
            "user_id, erased_by) VALUES (%s, %s, '', 'received', '', '', '', '{}', "
            "'', false, 0, '', %s, '', '', '') RETURNING id"
        )
        cursor.execute(insert, [bot.pk, now, "new"])
        assert cursor.fetchone()[0] > max(counts[partitions.EVENTS][1], copy.pk)
        with pytest.raises(IntegrityError, match="delivery_uniq"):
            cursor.execute(insert, [bot.pk, times[0] + timedelta(seconds=1), "d-0"])
    assert partitions.months_ahead(using="release") >= partitions.MONTHS_AHEAD

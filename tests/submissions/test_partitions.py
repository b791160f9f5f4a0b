"""Events and their children by month: the key they carry, purges, the layout on
PostgreSQL (partitions ahead, dropping months, the edges, EXPLAIN)."""

import itertools
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection
from django.utils import timezone

from submissions.models import FormAnswer, FormSubmission, HandlerRun, WebhookEvent
from submissions.services import partitions
from submissions.services.retention import webhook_events_purge
from submissions.services.runs import handler_run_build, handler_run_save
from submissions.services.storage import (
    COPY_WINDOW,
    PartitionedStorage,
    storage_for,
)
from tests.factories import (
    FormAnswerFactory,
    WebhookEventFactory,
    submission_with_answers,
)

pytestmark = pytest.mark.django_db

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="partitions are PostgreSQL's; SQLite keeps plain tables",
)


def months_ago(months: int, day: int = 15) -> datetime:
    current = partitions.month_start(timezone.now())
    return partitions.month_add(current, -months).replace(day=day, hour=12)


def event_with_children(received_at: datetime, **kwargs) -> WebhookEvent:
    submission = submission_with_answers(
        {"name": "Ada", "email": "ada@example.com"},
        event=WebhookEventFactory(received_at=received_at, **kwargs),
    )
    event = submission.event
    handler_run_save(
        run=handler_run_build(
            event=event,
            attempt=1,
            trigger=HandlerRun.Trigger.DELIVERY,
            started_at=received_at,
            duration_ms=2.0,
            outcome=HandlerRun.Outcome.SUCCEEDED,
        )
    )
    return event


@pytest.fixture(autouse=True)
def months_back():
    """The test database was migrated empty: its months start at this one."""
    if connection.vendor == "postgresql":
        partitions.partitions_ensure(since=months_ago(7))


def purge(*args: str) -> str:
    out = StringIO()
    call_command("purge_events", *args, stdout=out)
    return out.getvalue()


def test_a_delivery_s_children_carry_its_received_at(deliver):
    """The one write path sets the key on the submission, answers and run."""
    response = deliver({"handler": "save-form", "formValues": {"a": "1", "b": "2"}})
    assert response.status_code == 200
    event = WebhookEvent.objects.get()
    submission = FormSubmission.objects.get()
    assert submission.received_at == event.received_at
    assert {a.received_at for a in FormAnswer.objects.all()} == {event.received_at}
    assert {r.received_at for r in HandlerRun.objects.all()} == {event.received_at}


def test_purge_deletes_old_months_and_keeps_unlinked_submissions():
    old = event_with_children(months_ago(5))
    newer = event_with_children(months_ago(0, day=1))
    copy = WebhookEventFactory(
        bot=old.bot,
        received_at=months_ago(0, day=1),
        status=WebhookEvent.Status.DUPLICATE,
        duplicate_of=old,
        delivery_id=old.delivery_id,
    )
    out = purge("--older-than", "60")
    assert set(WebhookEvent.objects.all()) == {newer}  # the copy went with its original
    assert not WebhookEvent.objects.filter(pk=copy.pk).exists()
    assert set(HandlerRun.objects.values_list("event_id", flat=True)) == {newer.pk}
    kept = FormSubmission.objects.get(pk=old.submission.pk)
    assert kept.event_id is None
    assert kept.answers.count() == 2
    assert "Deleted 2 event(s)" in out


def test_purge_with_submissions_deletes_them_too():
    event_with_children(months_ago(5))
    newer = event_with_children(months_ago(0, day=1))
    out = purge("--older-than", "60", "--include-submissions")
    assert list(FormSubmission.objects.all()) == [newer.submission]
    assert set(FormAnswer.objects.values_list("submission_id", flat=True)) == {
        newer.submission.pk
    }
    assert "1 submission(s)" in out


@postgres_only
def test_the_tables_are_partitioned_with_months_ahead_and_no_default():
    assert isinstance(storage_for(), PartitionedStorage)
    assert partitions.months_ahead() >= partitions.MONTHS_AHEAD
    for table in partitions.TABLES:
        parts = partitions.partitions_list(table)
        assert parts[0].lower is None  # _before: MINVALUE
        assert parts[-1].upper is None  # _after: MAXVALUE
        # Contiguous: each starts where the last ended (no gap, no DEFAULT).
        assert all(a.upper == b.lower for a, b in itertools.pairwise(parts))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT'"
        )
        assert cursor.fetchone()[0] == 0


def partition_of(table: str, pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT tableoid::regclass::text FROM {table} WHERE id = %s",  # noqa: S608
            [pk],
        )
        return cursor.fetchone()[0]


@postgres_only
def test_rows_outside_every_month_are_stored_and_moved_into_months_made_later():
    ancient = event_with_children(datetime(1990, 6, 1, tzinfo=UTC))
    future = partitions.month_add(partitions.month_start(timezone.now()), 8)
    ahead = event_with_children(future + timedelta(days=3))
    assert partition_of(partitions.EVENTS, ancient.pk) == f"{partitions.EVENTS}_before"
    assert partition_of(partitions.RUNS, ahead.runs.get().pk) == (
        f"{partitions.RUNS}_after"
    )
    out = StringIO()
    call_command("partitions", "--ensure", "--months", "9", stdout=out)
    assert "month(s) ahead" in out.getvalue()
    name = partitions.month_name(partitions.EVENTS, future)
    assert partition_of(partitions.EVENTS, ahead.pk) == name
    assert partition_of(partitions.ANSWERS, ahead.submission.answers.first().pk) == (
        partitions.month_name(partitions.ANSWERS, future)
    )
    assert partitions.months_ahead() >= 9
    assert WebhookEvent.objects.count() == 2  # nothing lost on the way


@postgres_only
def test_purge_drops_whole_months_and_deletes_the_boundary_month_row_wise():
    whole = event_with_children(months_ago(4))
    ancient = event_with_children(datetime(1990, 6, 1, tzinfo=UTC))
    # In the month the cut falls in: one before it, one after.
    boundary_month = partitions.month_start(timezone.now() - timedelta(days=60))
    cut_day = timezone.now() - timedelta(days=60)
    early = event_with_children(boundary_month + timedelta(hours=1))
    late = event_with_children(cut_day + timedelta(hours=1))
    if early.received_at >= cut_day:  # the cut is in the month's first hour
        pytest.skip("the cut falls in the boundary month's first hour")
    report = webhook_events_purge(
        before=cut_day, include_submissions=True, batch_size=1
    )
    dropped = dict(report.dropped)
    old_month = partitions.month_start(whole.received_at)
    for table in partitions.TABLES:
        assert partitions.month_name(table, old_month) in dropped
        assert f"{table}_before" in dropped  # emptied, made again
        first = partitions.partitions_list(table)[0]
        assert first.lower is None
        assert first.upper == boundary_month
    assert dropped[partitions.month_name(partitions.EVENTS, old_month)] == 1
    assert set(WebhookEvent.objects.all()) == {late}
    assert report.events == 3
    assert report.deleted == 2  # the early event and its submission, row-wise
    assert not FormAnswer.objects.filter(
        submission__event__in=[whole, ancient, early]
    ).exists()
    assert FormAnswer.objects.count() == 2


def test_purge_before_a_month_s_first_day_drops_whole_months_only():
    """``--before`` a month's first day: on PostgreSQL nothing is deleted row-wise."""
    old = event_with_children(months_ago(3))
    kept = event_with_children(months_ago(2, day=1).replace(hour=0, minute=5))
    first_day = partitions.month_start(kept.received_at)

    out = purge("--before", f"{first_day:%Y-%m-%d}", "--include-submissions")

    assert list(WebhookEvent.objects.all()) == [kept]
    assert not FormSubmission.objects.filter(pk=old.submission.pk).exists()
    assert FormAnswer.objects.count() == 2
    assert f"received before {first_day:%Y-%m-%d} 00:00 UTC" in out
    if connection.vendor == "postgresql":
        dropped = partitions.month_name(
            partitions.EVENTS, partitions.month_start(old.received_at)
        )
        assert f"Dropped partition {dropped} (1 row(s))" in out
        assert "Deleted 0 row(s) in batches" in out


def test_purge_before_takes_a_date_only():
    with pytest.raises(CommandError, match="a date as YYYY-MM-DD"):
        purge("--before", "2026-13-01")
    with pytest.raises(CommandError, match="not allowed with argument"):
        purge("--before", "2026-01-01", "--older-than", "3")


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_purge_detaches_concurrently_outside_a_transaction():
    event_with_children(months_ago(5))
    kept = event_with_children(months_ago(0, day=2))
    out = purge("--older-than", "90")
    assert f"Dropped partition {partitions.EVENTS}_p" in out
    assert list(WebhookEvent.objects.all()) == [kept]
    assert FormSubmission.objects.filter(event__isnull=True).count() == 1
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_inherits WHERE inhdetachpending",
        )
        assert cursor.fetchone()[0] == 0


@postgres_only
def test_a_copy_across_a_month_s_edge_is_a_duplicate(client):
    edge = partitions.month_start(timezone.now())
    original = WebhookEventFactory(
        received_at=edge - COPY_WINDOW / 2, delivery_id="edge-1"
    )
    storage = storage_for()
    copy = WebhookEvent(
        bot=original.bot,
        received_at=edge + COPY_WINDOW / 4,
        delivery_id="edge-1",
        handler_name="save-form",
    )
    with pytest.raises(IntegrityError, match="neighbouring month"):
        storage.delivery_insert(event=copy, submission=None, answers=[])
    # Another delivery id at the same moment is stored.
    other = WebhookEvent(
        bot=original.bot,
        received_at=edge + COPY_WINDOW / 4,
        delivery_id="edge-2",
        handler_name="save-form",
    )
    storage.delivery_insert(event=other, submission=None, answers=[])
    assert other.pk is not None


@postgres_only
def test_a_copy_in_the_same_month_is_refused_by_the_partition_s_index():
    original = WebhookEventFactory(received_at=months_ago(0, day=14))
    copy = WebhookEvent(
        bot=original.bot,
        received_at=months_ago(0, day=16),
        delivery_id=original.delivery_id,
    )
    with pytest.raises(IntegrityError):
        storage_for().delivery_insert(event=copy, submission=None, answers=[])


@postgres_only
def test_a_time_bounded_query_reads_only_its_months():
    FormAnswerFactory(submission__event__received_at=months_ago(1))
    start = partitions.month_start(months_ago(1))
    queryset = FormAnswer.objects.filter(
        received_at__gte=start, received_at__lt=partitions.month_add(start, 1)
    ).order_by()
    plan = queryset.explain()
    month = partitions.month_name(partitions.ANSWERS, start)
    assert month in plan
    others = [
        p.name
        for p in partitions.partitions_list(partitions.ANSWERS)
        if p.name != month
    ]
    assert not [name for name in others if name in plan], plan
    events = WebhookEvent.objects.filter(received_at__gte=start).explain()
    assert f"{partitions.EVENTS}_before" not in events


@postgres_only
def test_readiness_warns_when_few_months_lie_ahead(client):
    assert "warning" not in client.get("/readyz").json()["partitions"]
    for part in partitions.partitions_list(partitions.RUNS):
        if part.lower and part.lower > timezone.now() and part.upper:
            partitions.partition_detach_drop(part)
    # The months ahead of runs gone: _after no longer starts where they end.
    with connection.cursor() as cursor:
        cursor.execute(
            f"ALTER TABLE {partitions.RUNS} DETACH PARTITION {partitions.RUNS}_after"
        )
    body = client.get("/readyz").json()
    assert body["status"] == "ready"
    assert body["partitions"]["months_ahead"] == 0
    assert "partitions --ensure" in body["partitions"]["warning"]


def test_the_partitions_command_says_so_on_plain_tables():
    out = StringIO()
    call_command("partitions", "--list", stdout=out)
    if connection.vendor == "postgresql":
        assert f"{partitions.EVENTS}_after" in out.getvalue()
    else:
        assert "plain tables" in out.getvalue()

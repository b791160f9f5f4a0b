"""Where the hot path's writes meet the database: one small backend per database.

A delivery is written twice: its rows (event, submission, answers) when it
arrives, and its run with the status it leaves when the handler is done.
``Storage`` does both with the ORM's statements inside transactions, on any
database; ``StatementStorage`` (PostgreSQL) sends each as one statement of
data-modifying ``WITH`` clauses (``submissions.statements``);
``PartitionedStorage`` (PostgreSQL's tables partitioned by month, the layout
migration 0014 makes) adds what the months need: de-duplication across a
month's edge, updates that read one partition, purges that drop months.
``storage_for`` picks one per database; the services above it do not change.

Each child row (submission, answer, run) carries its event's
``received_at``: the month it is stored in and dropped with. The backends
set it, as the one write path for all three.
"""

from __future__ import annotations

import functools
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, connections, transaction
from django.db.models import Model, QuerySet

from submissions import statements
from submissions.models import FormAnswer, FormSubmission, HandlerRun, WebhookEvent
from submissions.services import partitions

#: Most rows one batch of a row-wise delete takes (``purge_events --batch-size``).
MAX_BATCH = 5000


@dataclass(slots=True)
class PurgeReport:
    """What a purge removed: whole months dropped, rows deleted one batch at a time."""

    events: int = 0
    submissions: int = 0
    #: (partition, rows it held) for every partition dropped whole.
    dropped: list[tuple[str, int]] = field(default_factory=list)
    #: Rows deleted (or, for kept submissions, unlinked) one batch at a time.
    deleted: int = 0
    unlinked: int = 0


def delete_in_batches(queryset: QuerySet[Any], batch_size: int) -> int:
    """Delete ``queryset``'s rows ``batch_size`` at a time, oldest ids first, each
    batch its own transaction (with what the ORM cascades to); rows of its model."""
    deleted = 0
    model = queryset.model
    while True:
        with transaction.atomic(using=queryset.db):
            ids = list(
                queryset.order_by("pk").values_list("pk", flat=True)[:batch_size]
            )
            if not ids:
                return deleted
            _, per_model = model.objects.using(queryset.db).filter(pk__in=ids).delete()
        deleted += per_model.get(model._meta.label, 0)


def unlink_in_batches(queryset: QuerySet[Any], batch_size: int) -> int:
    """Set ``event`` to null on ``queryset``'s submissions, a batch at a time."""
    unlinked = 0
    while True:
        with transaction.atomic(using=queryset.db):
            ids = list(
                queryset.filter(event__isnull=False)
                .order_by("pk")
                .values_list("pk", flat=True)[:batch_size]
            )
            if not ids:
                return unlinked
            unlinked += (
                FormSubmission.objects.using(queryset.db)
                .filter(pk__in=ids)
                .update(event=None)
            )


def saved(obj: Model, pk: int, using: str = "default") -> None:
    """``obj`` as ``save()`` would leave it: its new id, no longer being added."""
    obj.pk = pk
    obj._state.adding = False
    obj._state.db = using


def savepoint_if_nested(using: str = "default") -> AbstractContextManager[Any]:
    """A savepoint when a transaction is open (a test's, a caller's); else nothing,
    as a single statement is atomic by itself."""
    if transaction.get_connection(using).in_atomic_block:
        return transaction.atomic(using=using)
    return nullcontext()


class Storage:
    """The ORM's statements, each write's rows together in a transaction."""

    def __init__(self, using: str = "default") -> None:
        self.using = using

    def delivery_insert(
        self,
        *,
        event: WebhookEvent,
        submission: FormSubmission | None,
        answers: list[FormAnswer],
    ) -> None:
        """Insert ``event`` and its ``submission`` and ``answers``, all or nothing.

        The children carry their event's ``received_at`` already (the month
        they live in: ``services.deliveries`` builds them so).

        Inside a caller's transaction, in a savepoint, so a duplicate's
        ``IntegrityError`` leaves it usable.
        """
        with transaction.atomic(using=self.using):
            event.save(force_insert=True, using=self.using)
            if submission is not None:
                submission.save(force_insert=True, using=self.using)
                FormAnswer.objects.using(self.using).bulk_create(answers)

    def run_insert(
        self, *, event: WebhookEvent, run: HandlerRun, fields: dict[str, Any]
    ) -> bool:
        """Insert ``run`` and set ``fields`` on ``event``, together, if the event
        was not erased. False (and nothing written) when it was, or is gone:
        the caller then writes what an erased event may keep."""
        run.received_at = event.received_at
        with transaction.atomic(using=self.using):
            kept = (
                WebhookEvent.objects.using(self.using)
                .filter(pk=event.pk, erased_at__isnull=True)
                .update(**fields)
            )
            if not kept:
                return False
            run.save(force_insert=True, using=self.using)
        return True

    def events_purge(
        self, *, before: datetime, include_submissions: bool, batch_size: int
    ) -> PurgeReport:
        """Delete events received before ``before`` (with their runs and
        duplicates), row-wise in batches; their submissions are unlinked and
        kept unless ``include_submissions``, which deletes those too."""
        report = PurgeReport()
        self._purge_rows(
            report,
            lower=None,
            before=before,
            include_submissions=include_submissions,
            batch_size=batch_size,
        )
        return report

    def _purge_rows(
        self,
        report: PurgeReport,
        *,
        lower: datetime | None,
        before: datetime,
        include_submissions: bool,
        batch_size: int,
    ) -> None:
        """The row-wise purge of ``[lower, before)`` (``lower`` None: all before)."""
        events = WebhookEvent.objects.using(self.using).filter(received_at__lt=before)
        submissions = FormSubmission.objects.using(self.using).filter(
            submitted_at__lt=before
        )
        if lower is not None:
            events = events.filter(received_at__gte=lower)
            submissions = submissions.filter(received_at__gte=lower)
        if include_submissions:
            count = delete_in_batches(submissions, batch_size)
            report.submissions += count
            report.deleted += count
        count = delete_in_batches(
            events.filter(duplicate_of__isnull=True), batch_size
        ) + delete_in_batches(events, batch_size)  # then duplicates of newer originals
        report.events += count
        report.deleted += count


class StatementStorage(Storage):
    """PostgreSQL: each write one statement (``submissions.statements``), atomic
    by itself, with no transaction around it."""

    def delivery_insert(
        self,
        *,
        event: WebhookEvent,
        submission: FormSubmission | None,
        answers: list[FormAnswer],
    ) -> None:
        clauses = [
            ("e", statements.insert_sql([event], returning=True, using=self.using))
        ]
        final = "SELECT (SELECT id FROM e)"
        if submission is not None:
            submission.event_id = statements.id_of("e")
            for answer in answers:
                answer.submission_id = statements.id_of("s")
            clauses += [
                (
                    "s",
                    statements.insert_sql(
                        [submission], returning=True, using=self.using
                    ),
                ),
                (
                    "a",
                    statements.insert_rows_sql(answers, using=self.using)
                    if len(answers) > statements.UNNEST_ABOVE
                    else statements.insert_sql(
                        answers, returning=False, using=self.using
                    ),
                ),
            ]
            final += ", (SELECT id FROM s)"
        with savepoint_if_nested(self.using):
            row = statements.run(clauses, final, using=self.using)
        saved(event, row[0], self.using)
        if submission is not None:
            submission.event = event
            saved(submission, row[1], self.using)
            for answer in answers:
                answer.submission = submission

    def run_insert(
        self, *, event: WebhookEvent, run: HandlerRun, fields: dict[str, Any]
    ) -> bool:
        # The run is inserted only if the event's UPDATE matched it not erased:
        # that UPDATE waits for an erasure holding the row, then sees it erased.
        run.received_at = event.received_at
        with savepoint_if_nested(self.using):
            row = statements.run(
                [
                    (
                        "u",
                        statements.update_sql(
                            WebhookEvent,
                            event.pk,
                            fields,
                            where={"erased_at__isnull": True},
                            match=self.event_match(event),
                            returning=True,
                            using=self.using,
                        ),
                    ),
                    (
                        "r",
                        statements.insert_sql(
                            [run], returning=True, only_if="u", using=self.using
                        ),
                    ),
                ],
                "SELECT (SELECT id FROM r)",
                using=self.using,
            )
        if row[0] is None:
            return False
        saved(run, row[0], self.using)
        return True

    def event_match(self, event: WebhookEvent) -> dict[str, Any] | None:
        """Columns besides the id an UPDATE of ``event`` may name (none here)."""
        return None


#: How far from a month's edge a delivery looks for its original in the
#: neighbouring month (one index probe, under a lock on its delivery id).
COPY_WINDOW = timedelta(days=1)


class PartitionedStorage(StatementStorage):
    """PostgreSQL with the four tables partitioned by month (``services.partitions``).

    One original per bot and delivery id is a unique index on each events
    partition, so two copies in one month are refused by the database as on
    a plain table. Across a month's edge no index can see both: a delivery
    received within ``COPY_WINDOW`` of its month's start or end takes a
    transaction-scoped advisory lock on its bot and delivery id and looks
    for an original in that stretch of the neighbouring month; a copy found
    there is refused as the unique index refuses one (``IntegrityError``),
    and the lock makes two copies racing across the edge take turns. A copy
    arriving more than ``COPY_WINDOW`` after its original, across an edge,
    is stored as a new delivery (docs/postgresql.md).
    """

    def delivery_insert(
        self,
        *,
        event: WebhookEvent,
        submission: FormSubmission | None,
        answers: list[FormAnswer],
    ) -> None:
        stretch = self.neighbour_stretch(event.received_at)
        if not event.delivery_id or stretch is None:
            super().delivery_insert(event=event, submission=submission, answers=answers)
            return
        with transaction.atomic(using=self.using):
            with connections[self.using].cursor() as cursor:
                cursor.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                    [f"delivery:{event.bot_id}:{event.delivery_id}"],
                )
            lower, upper = stretch
            if (
                WebhookEvent.objects.using(self.using)
                .filter(
                    bot_id=event.bot_id,
                    delivery_id=event.delivery_id,
                    duplicate_of__isnull=True,
                    received_at__gte=lower,
                    received_at__lt=upper,
                )
                .exists()
            ):
                raise IntegrityError(
                    f"Delivery {event.delivery_id!r} is stored already, "
                    "in the neighbouring month."
                )
            super().delivery_insert(event=event, submission=submission, answers=answers)

    @staticmethod
    def neighbour_stretch(moment: datetime) -> tuple[datetime, datetime] | None:
        """The part of the neighbouring month within ``COPY_WINDOW`` of ``moment``,
        or None when ``moment`` is farther than that from its month's edges."""
        start = partitions.month_start(moment)
        end = partitions.month_add(start, 1)
        if moment - start < COPY_WINDOW:
            return moment - COPY_WINDOW, start
        if end - moment <= COPY_WINDOW:
            return end, moment + COPY_WINDOW
        return None

    def event_match(self, event: WebhookEvent) -> dict[str, Any] | None:
        # With the partition key, the UPDATE reads one partition, not each.
        return {"received_at": event.received_at}

    def events_purge(
        self, *, before: datetime, include_submissions: bool, batch_size: int
    ) -> PurgeReport:
        """Drop every whole month before ``before``; delete the rest row-wise.

        Months ending at or before ``before`` go whole, children first
        (answers and submissions when ``include_submissions``, then runs,
        then events), each partition detached concurrently and dropped.
        Kept submissions of a dropped events month are unlinked first, and
        duplicates in later months of its originals deleted (the ORM's
        cascade on a plain table). What lies before ``before`` in the month
        it falls in (or in ``_before``) is deleted row-wise, in batches.
        """
        report = PurgeReport()
        tables = [partitions.RUNS, partitions.EVENTS]
        if include_submissions:
            tables = [partitions.ANSWERS, partitions.SUBMISSIONS, *tables]
        # Rows before the first month, and of the month ``before`` falls in.
        parts = partitions.partitions_list(partitions.EVENTS, using=self.using)
        whole = [p for p in parts if p.upper is not None and p.upper <= before]
        cut = max((p.upper for p in whole), default=None)
        self._purge_rows(
            report,
            lower=cut,
            before=before,
            include_submissions=include_submissions,
            batch_size=batch_size,
        )
        if cut is None:
            return report
        events = WebhookEvent.objects.using(self.using)
        old = events.filter(received_at__lt=cut)
        # Duplicates of originals about to go, in later months.
        count = delete_in_batches(
            events.filter(
                received_at__gte=cut,
                duplicate_of__isnull=False,
                duplicate_of__in=old.filter(duplicate_of__isnull=True).values("pk"),
            ),
            batch_size,
        )
        report.events += count
        report.deleted += count
        if not include_submissions:
            report.unlinked += unlink_in_batches(
                FormSubmission.objects.using(self.using).filter(received_at__lt=cut),
                batch_size,
            )
        for table in tables:
            parts = partitions.partitions_list(table, using=self.using)
            for part in parts:
                if part.upper is None or part.upper > cut:
                    continue
                rows = self._count(part.name)
                if part.lower is not None:
                    partitions.partition_detach_drop(part, using=self.using)
                report.dropped.append((part.name, rows))
                if table == partitions.EVENTS:
                    report.events += rows
                elif table == partitions.SUBMISSIONS:
                    report.submissions += rows
            # The table's _before, its rows all older than the cut, made
            # again empty to end where the first month left now starts.
            if parts[0].lower is None and parts[0].upper <= cut:
                partitions.partition_before_extend(table, cut, using=self.using)
        return report

    def _count(self, partition: str) -> int:
        with connections[self.using].cursor() as cursor:
            cursor.execute(f'SELECT COUNT(*) FROM "{partition}"')  # noqa: S608 - a partition's name
            return cursor.fetchone()[0]


@functools.cache
def storage_for(using: str = "default") -> Storage:
    """The backend for ``using``: ``PartitionedStorage`` on PostgreSQL once its
    tables are partitioned (migration 0014), ``StatementStorage`` on a plain
    PostgreSQL, ``Storage`` on any other database."""
    if connections[using].vendor != "postgresql":
        return Storage(using)
    if partitions.is_partitioned(using):
        return PartitionedStorage(using)
    return StatementStorage(using)

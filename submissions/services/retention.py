"""Deleting old data: events by age (``purge_events``), forms by their policies."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Min
from django.utils import timezone

from submissions.models import FormSubmission, RetentionPolicy, WebhookEvent
from submissions.selectors.retention import retention_querysets
from submissions.services.storage import (
    MAX_BATCH,
    PurgeReport,
    delete_in_batches,
    storage_for,
)
from submissions.services.tally_marks import tally_span_mark

#: How far past a purge's cut its days are marked (copies of the originals going).
COPY_REACH = timedelta(days=1)


def webhook_events_purge(
    *, before: datetime, include_submissions: bool = False, batch_size: int = 1000
) -> PurgeReport:
    """Delete events received before ``before`` (with their runs and duplicates).

    Their form submissions stay (unlinked) unless ``include_submissions``,
    which also deletes submissions received before ``before``. On PostgreSQL's
    partitioned tables every whole month before ``before`` is dropped and
    only the rest deleted row-wise; elsewhere every row goes row-wise. Each
    batch (at most ``storage.MAX_BATCH`` rows) is its own transaction, so a
    long purge never holds locks for long.
    """
    if not 1 <= batch_size <= MAX_BATCH:
        raise ValueError(f"batch_size must be 1 to {MAX_BATCH}, not {batch_size}.")
    # The days of the rows going are counted again (``services.tallies``).
    oldest = [
        WebhookEvent.objects.filter(received_at__lt=before).aggregate(
            at=Min("received_at")
        )["at"]
    ]
    if include_submissions:
        oldest.append(
            FormSubmission.objects.filter(submitted_at__lt=before).aggregate(
                at=Min("submitted_at")
            )["at"]
        )
    # Marked before (the pages read those days' rows meanwhile) and after (a
    # tallies run during the batches may have counted some rows still there).
    oldest = min(filter(None, oldest), default=None)
    # A day past the cut too: copies of originals going go with them, and
    # copies come within seconds (a later one's count stays until a rebuild).
    reach = before + COPY_REACH
    tally_span_mark(oldest, reach)
    report = storage_for().events_purge(
        before=before, include_submissions=include_submissions, batch_size=batch_size
    )
    tally_span_mark(oldest, reach)
    return report


def _delete_in_batches(queryset: Any, batch_size: int) -> int:
    return delete_in_batches(queryset, batch_size)


@dataclass(frozen=True, slots=True)
class RetentionResult:
    policy: RetentionPolicy
    before: datetime
    submissions: int
    events: int


def retention_apply(
    *, dry_run: bool = False, batch_size: int = 1000, now: datetime | None = None
) -> list[RetentionResult]:
    """Apply every retention policy: its form's old submissions and events go, in batches.

    With ``dry_run``, only count. Each batch is its own transaction.
    """
    now = now or timezone.now()
    results = []
    for policy in RetentionPolicy.objects.select_related("bot"):
        submissions, events, before = retention_querysets(policy, now=now)
        if dry_run:
            results.append(
                RetentionResult(policy, before, submissions.count(), events.count())
            )
            continue
        oldest = min(
            filter(
                None,
                [
                    submissions.aggregate(at=Min("submitted_at"))["at"],
                    events.aggregate(at=Min("received_at"))["at"],
                ],
            ),
            default=None,
        )
        tally_span_mark(oldest, before + COPY_REACH)  # before and after, as in a purge
        deleted_submissions = _delete_in_batches(submissions, batch_size)
        deleted_events = _delete_in_batches(
            events.filter(duplicate_of__isnull=True), batch_size
        ) + _delete_in_batches(events, batch_size)
        tally_span_mark(oldest, before + COPY_REACH)
        results.append(
            RetentionResult(policy, before, deleted_submissions, deleted_events)
        )
    return results

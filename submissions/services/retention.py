"""Deleting old data: events by age (``purge_events``), forms by their policies."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from submissions.models import (
    FormSubmission,
    RetentionPolicy,
    WebhookEvent,
)
from submissions.selectors.retention import retention_querysets


@dataclass(frozen=True, slots=True)
class PurgeResult:
    events: int
    submissions: int


def webhook_events_purge(
    *, before: datetime, include_submissions: bool = False, batch_size: int = 1000
) -> PurgeResult:
    """Delete events received before ``before`` (with their runs and duplicates), in batches.

    Their form submissions stay (unlinked) unless ``include_submissions``, which
    also deletes submissions received before ``before``. Each batch is its own
    transaction, so a long purge never holds locks for long.
    """
    submissions = 0
    if include_submissions:
        submissions = _delete_in_batches(
            FormSubmission.objects.filter(submitted_at__lt=before), batch_size
        )
    events = _delete_in_batches(
        WebhookEvent.objects.filter(received_at__lt=before, duplicate_of__isnull=True),
        batch_size,
    )
    # Duplicates of newer originals, on their own.
    events += _delete_in_batches(
        WebhookEvent.objects.filter(received_at__lt=before), batch_size
    )
    return PurgeResult(events=events, submissions=submissions)


def _delete_in_batches(queryset: Any, batch_size: int) -> int:
    deleted = 0
    model = queryset.model
    while True:
        with transaction.atomic():
            ids = list(
                queryset.order_by("pk").values_list("pk", flat=True)[:batch_size]
            )
            if not ids:
                return deleted
            _, per_model = model.objects.filter(pk__in=ids).delete()
        deleted += per_model.get(model._meta.label, 0)


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
        deleted_submissions = _delete_in_batches(submissions, batch_size)
        deleted_events = _delete_in_batches(
            events.filter(duplicate_of__isnull=True), batch_size
        ) + _delete_in_batches(events, batch_size)
        results.append(
            RetentionResult(policy, before, deleted_submissions, deleted_events)
        )
    return results

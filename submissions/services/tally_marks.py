"""Marking the days whose rows changed after the tallies counted them (``services.tallies``).

Every path that changes or deletes rows already counted calls one of these
first (in its transaction where it has one); a marked day is read from its
rows until ``tallies_count`` recounts it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import F
from django.utils import timezone

from submissions.models import TallyDay, WebhookEvent
from submissions.moments import site_day as day_of
from submissions.services.tallies import TALLY_LAG

#: A change to a row older than this marks its day (tallied rows are all older).
TALLY_SETTLED = TALLY_LAG / 2


def tally_days_mark(days: Iterable[date], *, using: str = "default") -> int:
    """Mark ``days`` as changed: they are read from their rows until recounted."""
    now = timezone.now()
    days = set(days)
    if days:
        marked = TallyDay.objects.using(using)
        marked.filter(day__in=days).update(
            generation=F("generation") + 1, marked_at=now
        )
        marked.bulk_create(
            [TallyDay(day=day, marked_at=now) for day in days], ignore_conflicts=True
        )
    return len(days)


def tally_moments_mark(moments: Iterable[datetime], *, using: str = "default") -> int:
    """Mark the days of ``moments`` (times of rows about to change)."""
    return tally_days_mark({day_of(moment) for moment in moments}, using=using)


def tally_event_mark(event: WebhookEvent) -> None:
    """Mark ``event``'s day if it may be tallied (a status set long after it came)."""
    if timezone.now() - event.received_at >= TALLY_SETTLED:
        tally_moments_mark([event.received_at], using=event._state.db or "default")


def tally_rows_mark(rows: Any, field: str = "submitted_at") -> int:
    """Mark the days of a queryset's rows about to change or go (by ``field``)."""
    moments = rows.order_by().values_list(field, flat=True)
    return tally_moments_mark(moments.iterator(), using=rows.db)


def tally_span_mark(
    lower: datetime | None, upper: datetime, *, using: str = "default"
) -> int:
    """Mark every day from ``lower``'s to ``upper``'s (rows between them are going).

    ``lower`` None: nothing is going, nothing is marked.
    """
    if lower is None:
        return 0
    first, last = day_of(lower), day_of(upper)
    return tally_days_mark(
        (first + timedelta(days=n) for n in range((last - first).days + 1)),
        using=using,
    )

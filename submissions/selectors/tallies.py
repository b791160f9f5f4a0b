"""Reading the tallies with what they do not cover yet (``services.tallies``).

A count is the tallies' rows for the days they cover plus the rows they do
not: newer than ``TallyState``'s ids, or on a day marked as changed. Both
parts come from one state of the tallies: the state is read before and
after the tallies, and read again if a batch was added in between.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TypeVar

from django.db.models import Q, QuerySet
from django.utils import timezone

from submissions.models import (
    DeliveryDayTally,
    FormDayTally,
    QuestionTally,
    TallyDay,
    TallyState,
)
from submissions.moments import site_day_bounds as day_bounds

T = TypeVar("T")

#: Reads of the tallies tried before counting every row instead.
TRIES = 3


@dataclass(frozen=True, slots=True)
class Coverage:
    """What the tallies cover: rows up to these ids, except on ``days``."""

    submissions_up_to: int = 0
    events_up_to: int = 0
    days: frozenset[date] = frozenset()
    using: str = "default"

    def live_submissions(self, field: str = "submitted_at") -> Q:
        """The submissions the tallies do not count."""
        return self._live(self.submissions_up_to, field)

    def live_events(self, field: str = "received_at") -> Q:
        return self._live(self.events_up_to, field)

    def _live(self, up_to: int, field: str) -> Q:
        if not up_to:
            return Q()
        live = Q(pk__gt=up_to)
        for start, end in _spans(self.days):
            live |= Q(**{f"{field}__gte": start, f"{field}__lt": end})
        return live

    def form_days(self) -> QuerySet[FormDayTally]:
        tallies = FormDayTally.objects.using(self.using)
        if not self.submissions_up_to:
            return tallies.none()
        return tallies.exclude(day__in=self.days)

    def delivery_days(self) -> QuerySet[DeliveryDayTally]:
        tallies = DeliveryDayTally.objects.using(self.using)
        if not self.events_up_to:
            return tallies.none()
        return tallies.exclude(day__in=self.days)

    def questions(self) -> QuerySet[QuestionTally]:
        tallies = QuestionTally.objects.using(self.using)
        return tallies if self.submissions_up_to else tallies.none()


def _spans(days: frozenset[date]) -> list[tuple[datetime, datetime]]:
    """``days`` as ``[start, end)`` instants, neighbouring days joined."""
    spans: list[tuple[datetime, datetime]] = []
    previous = None
    for day in sorted(days):
        start, end = day_bounds(day)
        if previous is not None and day - previous == timedelta(days=1):
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
        previous = day
    return spans


def _state(using: str) -> tuple[int, int] | None:
    row = (
        TallyState.objects.using(using)
        .filter(pk=1, time_zone=timezone.get_current_timezone_name())
        .values_list("submissions_up_to", "events_up_to")
        .first()
    )
    return tuple(row) if row else None


def tallied(
    read: Callable[[Coverage], T], *, using: str = "default"
) -> tuple[Coverage, T]:
    """``read(coverage)`` of one state of the tallies (three queries besides ``read``'s).

    No tallies (none counted yet, or counted in another time zone): a
    coverage of nothing, and every row is read.
    """
    for _ in range(TRIES):
        state = _state(using)
        if state is None:
            break
        days = frozenset(TallyDay.objects.using(using).values_list("day", flat=True))
        coverage = Coverage(*state, days=days, using=using)
        found = read(coverage)
        if _state(using) == state:
            return coverage, found
    coverage = Coverage(using=using)
    return coverage, read(coverage)


__all__ = ["Coverage", "tallied"]

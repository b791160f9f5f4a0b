"""The one rule for a date or date-time given by a person (command options, API filters).

``2025-01-31`` means the whole day: its start, or with ``end`` the start of
the next day (so "until 2025-01-31" includes that day). An ISO 8601
date-time without an offset is in the site's time zone (``DJANGO_TIME_ZONE``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from django.utils import timezone


def parse_moment(text: str, *, end: bool = False) -> datetime:
    """The moment ``text`` names, in UTC; ``ValueError`` when it names none."""
    text = text.strip()
    try:
        day = date.fromisoformat(text)
    except ValueError:
        moment = datetime.fromisoformat(text)
    else:
        try:
            moment = datetime.combine(day + timedelta(days=1) if end else day, time.min)
        except OverflowError as exc:  # the end of 9999-12-31
            raise ValueError(str(exc)) from None
    try:
        if timezone.is_naive(moment):
            moment = timezone.make_aware(moment)
        # UTC: the database adapter converts it, and a moment near year 1 or
        # 9999 overflows here, as a ValueError, rather than there.
        return moment.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError(str(exc)) from None


def site_day(moment: datetime) -> date:
    """``moment``'s day in the site's time zone (the days the console counts in)."""
    return timezone.localtime(moment).date()


def site_day_bounds(day: date) -> tuple[datetime, datetime]:
    """``[start, end)`` of ``day`` in the site's time zone (23 or 25 hours on a clock change)."""
    tz = timezone.get_current_timezone()
    return (
        timezone.make_aware(datetime.combine(day, time.min), tz),
        timezone.make_aware(datetime.combine(day + timedelta(days=1), time.min), tz),
    )

"""Reads: which rules watch what (cached for the request path), and counts in a window."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from alerts.conf import alert_settings
from alerts.models import AlertKind, AlertRule
from submissions.models import FormSubmission, HandlerRun, WebhookEvent
from submissions.tokens import TOKEN_ERROR_CODES

#: Failures of a handler: it raised, or it passed its deadline (the bot got
#: the fallback reply).
HANDLER_ERROR_CODES = ("handler_error", "handler_timeout")


@dataclass(frozen=True, slots=True)
class Watch:
    """What one enabled rule reacts to, as the request path needs it: no model."""

    kind: str
    bot_id: int | None
    handler_name: str

    def matches(self, *, kind: str, bot_id: int, handler_name: str) -> bool:
        return (
            self.kind == kind
            and self.bot_id in (None, bot_id)
            and self.handler_name in ("", handler_name)
        )


_watches: tuple[float, tuple[Watch, ...]] | None = None
_watches_lock = threading.Lock()


def watches() -> tuple[Watch, ...]:
    """The enabled rules that react per incident, read at most once per ``RULE_CACHE_SECONDS``.

    The request path asks this on every delivery: a processed delivery then
    costs no query unless a rule subscribes to new submissions. Saving or
    deleting a rule drops this process's copy at once; other processes see
    the change within ``RULE_CACHE_SECONDS``.
    """
    global _watches
    cached = _watches
    now = time.monotonic()
    if cached is not None and cached[0] > now:
        return cached[1]
    with _watches_lock:
        rules = AlertRule.objects.filter(enabled=True, daily_digest=False)
        fresh = tuple(
            Watch(kind=kind, bot_id=bot_id, handler_name=handler_name)
            for kind, bot_id, handler_name in rules.values_list(
                "kind", "bot_id", "handler_name"
            )
        )
        _watches = (now + alert_settings().rule_cache_seconds, fresh)
    return fresh


def watches_clear() -> None:
    global _watches
    _watches = None


def is_watched(*, kind: str, bot_id: int, handler_name: str) -> bool:
    return any(
        w.matches(kind=kind, bot_id=bot_id, handler_name=handler_name)
        for w in watches()
    )


def rules_for_incident(
    *, kind: str, bot_id: int, handler_name: str
) -> QuerySet[AlertRule]:
    """The enabled per-incident rules matching an incident, read fresh (the worker's view)."""
    return (
        AlertRule.objects.filter(kind=kind, enabled=True, daily_digest=False)
        .filter(Q(bot__isnull=True) | Q(bot_id=bot_id))
        .filter(Q(handler_name="") | Q(handler_name=handler_name))
        .prefetch_related("recipients")
        .order_by("id")
    )


def incidents_in_window(
    *, kind: str, bot_id: int, handler_name: str, until: datetime, window: timedelta
) -> int:
    """How many incidents like this one happened in the ``window`` up to ``until``."""
    since = until - window
    if kind == AlertKind.FOLLOW_UP_DEAD:
        return HandlerRun.objects.filter(
            outcome=HandlerRun.Outcome.DEAD,
            handler_name=handler_name,
            event__bot_id=bot_id,
            finished_at__gt=since,
            finished_at__lte=until,
        ).count()
    if kind == AlertKind.NEW_SUBMISSION:
        return FormSubmission.objects.filter(
            bot_id=bot_id,
            handler_name=handler_name,
            submitted_at__gt=since,
            submitted_at__lte=until,
        ).count()
    return (
        incident_events(kind=kind, bot_id=bot_id, handler_name=handler_name)
        .filter(received_at__gt=since, received_at__lte=until)
        .count()
    )


def incident_events(
    *, kind: str, bot_id: int, handler_name: str
) -> QuerySet[WebhookEvent]:
    """The stored events an incident of ``kind`` is one of."""
    events = WebhookEvent.objects.filter(bot_id=bot_id)
    if kind == AlertKind.REJECTED_TOKENS:
        return events.filter(
            status=WebhookEvent.Status.REJECTED, error_code__in=TOKEN_ERROR_CODES
        )
    if kind == AlertKind.UNKNOWN_HANDLER:
        return events.filter(
            status=WebhookEvent.Status.UNROUTED, handler_name=handler_name
        )
    return events.filter(
        status=WebhookEvent.Status.FAILED,
        error_code__in=HANDLER_ERROR_CODES,
        handler_name=handler_name,
    )


def token_error_counts(
    *, bot_id: int, until: datetime, window: timedelta
) -> dict[str, int]:
    """Rejected-token deliveries to a bot in the window, per error code, most first."""
    rows = (
        incident_events(kind=AlertKind.REJECTED_TOKENS, bot_id=bot_id, handler_name="")
        .filter(received_at__gt=until - window, received_at__lte=until)
        .order_by()
        .values_list("error_code")
        .annotate(n=Count("id"))
    )
    return dict(Counter(dict(rows)).most_common())


def digest_rules() -> QuerySet[AlertRule]:
    return (
        AlertRule.objects.filter(
            kind=AlertKind.NEW_SUBMISSION, enabled=True, daily_digest=True
        )
        .select_related("bot")
        .prefetch_related("recipients")
        .order_by("id")
    )


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The start and end of ``day`` in the current time zone (TIME_ZONE)."""
    start = timezone.make_aware(datetime.combine(day, datetime.min.time()))
    end = timezone.make_aware(
        datetime.combine(day + timedelta(days=1), datetime.min.time())
    )
    return start, end


def submission_counts(*, rule: AlertRule, day: date) -> list[tuple[str, str, int]]:
    """(bot name, form, count) of ``day``'s submissions the rule watches, bot and form order."""
    start, end = day_bounds(day)
    submissions = FormSubmission.objects.filter(
        submitted_at__gte=start, submitted_at__lt=end
    )
    if rule.bot_id:
        submissions = submissions.filter(bot_id=rule.bot_id)
    if rule.handler_name:
        submissions = submissions.filter(handler_name=rule.handler_name)
    rows = (
        submissions.values_list("bot__name", "handler_name")
        .annotate(n=Count("id"))
        .order_by("bot__name", "handler_name")
    )
    return [(bot, form, n) for bot, form, n in rows]

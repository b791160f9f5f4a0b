"""Reads of the console: the forms list, a form's table, the overview."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import (
    Count,
    Max,
    Min,
    Q,
    Sum,
)
from django.utils import timezone

from handlers import registry
from submissions.models import (
    Bot,
    FormAnswer,
    FormSubmission,
    HandlerRun,
    WebhookEvent,
)
from submissions.moments import site_day_bounds as day_bounds
from submissions.selectors.backends import reads_for
from submissions.selectors.tallies import Coverage, tallied
from submissions.tokens import TOKEN_ERROR_CODES


@dataclass(frozen=True, slots=True)
class FormSummary:
    """One form: a (bot, handler name) that has submissions."""

    bot: Bot
    handler_name: str
    total: int
    last_7_days: int
    today: int
    last_at: datetime
    labels: list[str]
    failing_runs: int


FAILED_OUTCOMES = (
    HandlerRun.Outcome.FAILED,
    HandlerRun.Outcome.TIMED_OUT,
    HandlerRun.Outcome.DEAD,
)


@dataclass(frozen=True, slots=True)
class FormsSummary:
    """``forms[start:stop]`` of ``total`` forms, most recently submitted first."""

    total: int
    forms: list[FormSummary]


def forms_summary(
    *,
    now: datetime,
    failing_since: datetime,
    start: int = 0,
    stop: int | None = None,
) -> FormsSummary:
    """Forms ``start`` to ``stop`` with their counts, latest questions and recent failures.

    Seven queries. Counts are the day tallies (``selectors.tallies``) and
    one aggregate over the submissions they do not cover (every form, for
    the total); "last 7 days" is today and the six days before, in the
    site's time zone. The latest questions are the answers of each shown
    form's newest submission (by id, which rises with time); failures are
    the failed, timed-out and dead runs since ``failing_since``.
    """
    today = timezone.localdate(now)
    week = today - timedelta(days=6)
    today_start, week_start = day_bounds(today)[0], day_bounds(week)[0]

    def read_tallies(coverage: Coverage) -> list[dict[str, Any]]:
        return list(
            coverage.form_days()
            .order_by()
            .values("bot_id", "handler_name")
            .annotate(
                total=Sum("submissions"),
                last_7_days=Sum("submissions", filter=Q(day__gte=week)),
                today=Sum("submissions", filter=Q(day=today)),
                last_at=Max("last_at"),
                last_id=Max("last_id"),
            )
        )

    coverage, tallies = tallied(read_tallies)
    live = (
        FormSubmission.objects.filter(coverage.live_submissions())
        .order_by()
        .values("bot_id", "handler_name")
        .annotate(
            total=Count("id"),
            last_7_days=Count("id", filter=Q(submitted_at__gte=week_start)),
            today=Count("id", filter=Q(submitted_at__gte=today_start)),
            last_at=Max("submitted_at"),
            last_id=Max("id"),
        )
    )
    forms: dict[tuple[int, str], dict[str, Any]] = {}
    for row in [*tallies, *live]:
        form = forms.setdefault(
            (row["bot_id"], row["handler_name"]),
            {**row, "total": 0, "last_7_days": 0, "today": 0},
        )
        for name in ("total", "last_7_days", "today"):
            form[name] += row[name] or 0  # a Sum over no day is None
        form["last_at"] = max(form["last_at"], row["last_at"])
        form["last_id"] = max(form["last_id"], row["last_id"])
    rows = sorted(forms.values(), key=lambda row: row["handler_name"])
    rows.sort(key=lambda row: row["last_at"], reverse=True)
    total = len(rows)
    rows = rows[start:stop]
    bots = Bot.objects.in_bulk({row["bot_id"] for row in rows})
    labels: dict[int, list[str]] = {}
    for submission_id, key, label in (
        FormAnswer.objects.filter(submission_id__in=[row["last_id"] for row in rows])
        .order_by("submission_id", "position")
        .values_list("submission_id", "key", "label")
    ):
        labels.setdefault(submission_id, []).append(label or key)
    failing = {
        (row["event__bot_id"], row["handler_name"]): row["n"]
        for row in HandlerRun.objects.filter(
            outcome__in=FAILED_OUTCOMES, started_at__gte=failing_since
        )
        .order_by()
        .values("event__bot_id", "handler_name")
        .annotate(n=Count("id"))
    }
    return FormsSummary(
        total=total,
        forms=[
            FormSummary(
                bot=bots[row["bot_id"]],
                handler_name=row["handler_name"],
                total=row["total"],
                last_7_days=row["last_7_days"],
                today=row["today"],
                last_at=row["last_at"],
                labels=labels.get(row["last_id"], []),
                failing_runs=failing.get((row["bot_id"], row["handler_name"]), 0),
            )
            for row in rows
        ],
    )


@dataclass(frozen=True, slots=True)
class Overview:
    days: list[date]
    #: (bot name, handler name) -> submissions per day, in ``days`` order.
    submissions: dict[tuple[str, str], list[int]]
    #: status -> deliveries per day, in ``days`` order.
    deliveries: dict[str, list[int]]
    unrouted: list[dict[str, Any]]
    #: Per bot: verified deliveries its wire mapping could not read.
    unparsed: list[dict[str, Any]]
    failing: list[dict[str, Any]]
    dead_follow_ups: list[dict[str, Any]]
    rejected_tokens: list[dict[str, Any]]


def _day_number(*, field: str, bounds: list[datetime], using: str) -> Any:
    """Which day of ``bounds`` (the days' starts, then the last one's end) ``field`` is in.

    1 for the first day, ``len(bounds) - 1`` for the last; 0 before, and
    ``len(bounds)`` after. The bounds are midnights in the site's time zone,
    worked out in Python (a day with a clock change lasts 23 or 25 hours), so
    the database compares instants instead of converting every row to a local
    date: on PostgreSQL one ``width_bucket`` per row (at a million events,
    less than half the time of ``AT TIME ZONE 'Europe/London'``), elsewhere
    a ``CASE`` with the same answers.
    """
    return reads_for(using).day_number(field, bounds)


def overview(
    *, now: datetime, days: int = 30, recent: timedelta = timedelta(hours=24)
) -> Overview:
    """The last ``days`` days per day, and what needs attention: eleven queries.

    Days are in the site's time zone. The per-day counts are the day
    tallies (``selectors.tallies``, four queries) and the rows they do not
    cover, which read only their index, grouped by ids (names are read
    after, for the few bots found): ``submission_time_idx`` covers the bot
    and handler name, ``event_time_idx`` the status (migration 0010). Every
    other query is bounded by time on an index.
    """
    today = timezone.localdate(now)
    day_list = [today - timedelta(days=n) for n in range(days - 1, -1, -1)]
    bounds = [*(day_bounds(day)[0] for day in day_list), day_bounds(today)[1]]
    start, end = bounds[0], bounds[-1]
    per_form: dict[tuple[int, str], list[int]] = {}
    deliveries: dict[str, list[int]] = {
        status: [0] * days for status in WebhookEvent.Status.values
    }
    first_day = day_list[0]

    def read_tallies(coverage: Coverage) -> tuple[list[Any], list[Any]]:
        return (
            list(
                coverage.form_days()
                .filter(day__gte=first_day, day__lte=today)
                .values_list("day", "bot_id", "handler_name", "submissions")
            ),
            list(
                coverage.delivery_days()
                .filter(day__gte=first_day, day__lte=today)
                .values_list("day", "status", "deliveries")
            ),
        )

    coverage, (form_days, delivery_days) = tallied(read_tallies)
    for day, bot_id, handler_name, count in form_days:
        row = per_form.setdefault((bot_id, handler_name), [0] * days)
        row[(day - first_day).days] += count
    for day, status, count in delivery_days:
        if status in deliveries:
            deliveries[status][(day - first_day).days] += count
    submitted = FormSubmission.objects.filter(
        coverage.live_submissions(), submitted_at__gte=start, submitted_at__lt=end
    )
    for day, bot_id, handler_name, count in (
        submitted.annotate(
            day=_day_number(field="submitted_at", bounds=bounds, using=submitted.db)
        )
        .order_by()
        .values_list("day", "bot_id", "handler_name")
        .annotate(n=Count("*"))
    ):
        if 1 <= day <= days:
            row = per_form.setdefault((bot_id, handler_name), [0] * days)
            row[day - 1] += count
    names = dict(
        Bot.objects.filter(pk__in={bot_id for bot_id, _ in per_form})
        .order_by()
        .values_list("pk", "name")
    )
    submissions: dict[tuple[str, str], list[int]] = {}
    for (bot_id, handler_name), counts in per_form.items():
        # Two bots of the same name share a row, as they share a label.
        row = submissions.setdefault((names[bot_id], handler_name), [0] * days)
        for n, count in enumerate(counts):
            row[n] += count
    received = WebhookEvent.objects.filter(
        coverage.live_events(), received_at__gte=start, received_at__lt=end
    )
    for day, status, count in (
        received.annotate(
            day=_day_number(field="received_at", bounds=bounds, using=received.db)
        )
        .order_by()
        .values_list("day", "status")
        .annotate(n=Count("*"))
    ):
        if 1 <= day <= days and status in deliveries:
            deliveries[status][day - 1] += count
    since = now - recent
    unrouted = list(
        WebhookEvent.objects.filter(
            status=WebhookEvent.Status.UNROUTED, received_at__gte=start
        )
        .order_by()
        .values("bot_id", "bot__name", "handler_name")
        .annotate(n=Count("id"), first=Min("received_at"), last=Max("received_at"))
        .order_by("-last")
    )
    unparsed = list(
        WebhookEvent.objects.filter(
            status=WebhookEvent.Status.UNPARSED, received_at__gte=start
        )
        .order_by()
        .values("bot_id", "bot__name")
        .annotate(n=Count("id"), last=Max("received_at"), last_id=Max("id"))
        .order_by("-last")
    )
    failing = list(
        HandlerRun.objects.filter(
            outcome__in=(HandlerRun.Outcome.FAILED, HandlerRun.Outcome.TIMED_OUT),
            started_at__gte=since,
        )
        .order_by()
        .values("handler_name")
        .annotate(n=Count("id"), last=Max("started_at"), last_id=Max("id"))
        .order_by("-last")
    )
    messages = dict(
        HandlerRun.objects.filter(
            pk__in=[row["last_id"] for row in failing]
        ).values_list("pk", "message")
    )
    for row in failing:
        row["message"] = messages.get(row["last_id"], "")
    dead = list(
        HandlerRun.objects.filter(
            outcome=HandlerRun.Outcome.DEAD, started_at__gte=start
        )
        .order_by()
        .values("handler_name")
        .annotate(n=Count("id"), last=Max("started_at"))
        .order_by("-last")
    )
    rejected = list(
        WebhookEvent.objects.filter(
            status=WebhookEvent.Status.REJECTED,
            error_code__in=TOKEN_ERROR_CODES,
            received_at__gte=since,
        )
        .order_by()
        .values("bot_id", "bot__name")
        .annotate(n=Count("id"), last=Max("received_at"))
        .order_by("-n")
    )
    return Overview(
        days=day_list,
        submissions=submissions,
        deliveries=deliveries,
        unrouted=unrouted,
        unparsed=unparsed,
        failing=failing,
        dead_follow_ups=dead,
        rejected_tokens=rejected,
    )


def form_page_answers(
    *, submission_ids: list[int], keys: list[str] | None = None
) -> dict[int, dict[str, tuple[Any, str]]]:
    """The answers of one page of submissions: id -> key -> (value, question type).

    Only the answers to ``keys`` when given (the page of columns shown).
    """
    found: dict[int, dict[str, tuple[Any, str]]] = {i: {} for i in submission_ids}
    answers = FormAnswer.objects.filter(submission_id__in=submission_ids)
    if keys is not None:
        answers = answers.filter(key__in=keys)
    for submission_id, key, value, input_type in answers.order_by(
        "submission_id", "position"
    ).values_list("submission_id", "key", "value", "input_type"):
        found[submission_id][key] = (value, input_type)
    return found


def submission_handler_names() -> list[str]:
    """Handler names to offer in filters: the registered ones (no table scan)."""
    return registry.names()


def submission_handler_exists(*, handler_name: str) -> bool:
    return (
        handler_name in registry
        or FormSubmission.objects.filter(handler_name=handler_name).exists()
    )

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from time import monotonic
from typing import Any

from django.db import connections
from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    Func,
    IntegerField,
    Max,
    Min,
    Model,
    OuterRef,
    Q,
    QuerySet,
    TextField,
    Value,
    When,
)
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from handlers import registry
from submissions.conf import webhook_settings
from submissions.exports import ExportColumn, ExportSubmission
from submissions.masking import sensitive_answer_q
from submissions.models import Bot, FormAnswer, FormSubmission, HandlerRun, WebhookEvent
from submissions.tokens import TOKEN_ERROR_CODES

#: slug -> (monotonic expiry, bot): this process's copies of active bots.
_active_bots: dict[str, tuple[float, Bot]] = {}


def bot_get_active(*, slug: str, fresh: bool = False) -> Bot | None:
    """The active bot with this URL slug, or None.

    Read at most once per ``BOT_CACHE_SECONDS`` per process (the bot lookup
    was a fifth of a delivery's CPU): a deactivated or deleted bot is refused
    by this process at once when it saved the change, by the others within
    that time. A token the cached secrets refuse reads the bot again
    (``fresh=True``, the intake does it), so a rotated secret works at once
    everywhere. Slugs that name no active bot are never cached. The bot
    returned may be shared between threads: read it, never change it.
    """
    now = monotonic()
    if not fresh:
        cached = _active_bots.get(slug)
        if cached is not None and cached[0] > now:
            return cached[1]
    bot = Bot.objects.filter(slug=slug, is_active=True).first()
    ttl = webhook_settings().bot_cache_seconds
    if bot is None or ttl <= 0:
        _active_bots.pop(slug, None)
    else:
        _active_bots[slug] = (now + ttl, bot)
    return bot


def bot_cache_clear() -> None:
    """Forget every cached bot (a bot was saved or deleted in this process)."""
    _active_bots.clear()


def bot_recent_deliveries(*, bot: Bot, limit: int = 20) -> list[WebhookEvent]:
    """``bot``'s latest requests, newest first (one query, on the bot's index)."""
    return list(
        WebhookEvent.objects.filter(bot=bot)
        .order_by("-received_at", "-id")
        .defer("headers", "traceback", "response_body")[:limit]
    )


# --- export --------------------------------------------------------------------

#: Submissions read per query by ``submission_export_iter``.
EXPORT_CHUNK_SIZE = 1000


def submission_export_queryset(
    *,
    bot: Bot | None = None,
    handler_name: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[FormSubmission]:
    """Submissions of ``bot`` / ``handler_name`` received in ``[since, until)``."""
    return _filtered(
        FormSubmission.objects.all(),
        time_field="submitted_at",
        bot=bot,
        handler_name=handler_name,
        since=since,
        until=until,
    )


def _filtered(
    queryset: QuerySet[Any],
    *,
    time_field: str,
    bot: Bot | None,
    handler_name: str | None,
    since: datetime | None,
    until: datetime | None,
) -> QuerySet[Any]:
    """The filters the commands share: bot, handler name, ``[since, until)``."""
    if bot is not None:
        queryset = queryset.filter(bot=bot)
    if handler_name is not None:
        queryset = queryset.filter(handler_name=handler_name)
    if since is not None:
        queryset = queryset.filter(**{f"{time_field}__gte": since})
    if until is not None:
        queryset = queryset.filter(**{f"{time_field}__lt": until})
    return queryset


def _plain(submissions: QuerySet[FormSubmission]) -> QuerySet[FormSubmission]:
    # The admin's queryset may carry prefetches and an ordering meant for a page.
    return submissions.prefetch_related(None).select_related(None).order_by()


def submission_export_columns(
    *, submissions: QuerySet[FormSubmission]
) -> list[ExportColumn]:
    """Every question key of ``submissions``, in first-seen order, in one query.

    First seen: by (submitted_at, id, position), the order rows are exported
    in. Each key's label is the one from its latest submission, so a
    relabelled question is headed by its current wording.

    The query groups the answers by key with their earliest and latest
    ``submitted_at`` (a hash aggregate, one row per key: nothing to sort),
    then reads back only the answers given at those moments, through the
    time index; Python breaks ties on (id, position). Window functions over
    every answer sorted all of them, spilling to disk: 18 s at a million
    submissions, against 2 s for this.
    """
    selected, params = (
        _plain(submissions)
        .values(export_id=F("pk"), export_at=F("submitted_at"))
        .query.sql_with_params()
    )
    connection = connections[submissions.db]
    if connection.vendor == "sqlite":
        return _export_columns_sqlite(connection, selected, params)
    answers = connection.ops.quote_name(FormAnswer._meta.db_table)
    sql = f"""
        SELECT a.key, s.export_at, a.submission_id, a.position, a.label, a.input_type
        FROM (
            SELECT a.key, MIN(s.export_at) AS first_at, MAX(s.export_at) AS last_at
            FROM {answers} a INNER JOIN ({selected}) s ON a.submission_id = s.export_id
            GROUP BY a.key
        ) b
        INNER JOIN ({selected}) s ON s.export_at = b.first_at OR s.export_at = b.last_at
        INNER JOIN {answers} a ON a.submission_id = s.export_id AND a.key = b.key
    """  # noqa: S608 - Django's own SQL for the queryset and table name
    first: dict[str, tuple[Any, int, int]] = {}
    latest: dict[str, tuple[Any, int, int, str, str]] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *params])
        # A few rows per key, unless many submissions share one timestamp.
        while rows := cursor.fetchmany(2000):
            for key, moment, submission_id, position, label, input_type in rows:
                if isinstance(moment, str):  # SQLite
                    moment = parse_datetime(moment)
                place = (moment, submission_id, position)
                if key not in first or place < first[key]:
                    first[key] = place
                if key not in latest or place > latest[key][:3]:
                    latest[key] = (*place, label, input_type)
    return [
        ExportColumn(
            key=key, label=latest[key][3] or "", input_type=latest[key][4] or ""
        )
        for key in sorted(first, key=first.__getitem__)
    ]


def _export_columns_sqlite(
    connection: Any, selected: str, params: tuple[Any, ...]
) -> list[ExportColumn]:
    """The same columns in one pass on SQLite, whatever the timestamps share.

    The join above finds the first and last answers by timestamp; SQLite runs
    it as a nested loop, which took minutes when many submissions share a
    timestamp. Here each answer's place (time, submission id, position) is one
    sortable string, and one GROUP BY keeps each key's least and greatest,
    the greatest followed by its type and label (a type holds no U+001F, so
    the label is everything after the second). SQLite stores times as
    ``YYYY-MM-DD HH:MM:SS[.ffffff]`` text: the space after it sorts before
    the dot of any fraction, so the strings sort as the places do, and no
    two places are equal, so the label never decides.
    """
    answers = connection.ops.quote_name(FormAnswer._meta.db_table)
    place = "s.export_at || printf(' %%020d %%010d', s.export_id, a.position)"
    sql = f"""
        SELECT a.key, MIN({place}),
            MAX({place} || char(31) || a.input_type || char(31) || a.label)
        FROM {answers} a INNER JOIN ({selected}) s ON a.submission_id = s.export_id
        GROUP BY a.key
    """  # noqa: S608 - Django's own SQL for the queryset and table name
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    rows.sort(key=lambda row: row[1])
    columns = []
    for key, _, last in rows:
        _, input_type, label = last.split("\x1f", 2)
        columns.append(ExportColumn(key=key, label=label, input_type=input_type))
    return columns


def submission_export_iter(
    *,
    submissions: QuerySet[FormSubmission],
    chunk_size: int = EXPORT_CHUNK_SIZE,
) -> Iterator[ExportSubmission]:
    """``submissions`` oldest first, ``chunk_size`` at a time, with their answers.

    Keyset pagination on (submitted_at, id): two indexed queries per chunk, no
    cursor held open while a slow client downloads, memory bounded by one chunk.
    """
    base = _plain(submissions).order_by("submitted_at", "id")
    fields = (
        "id",
        "submitted_at",
        "bot__slug",
        "handler_name",
        "conversation_id",
        "user_id",
    )
    after: tuple[datetime, int] | None = None
    while True:
        page = base
        if after is not None:
            # The plain >= bounds the index scan; the OR alone was a filter,
            # so every page re-read the index from its start (quadratic).
            page = base.filter(
                Q(submitted_at__gt=after[0])
                | Q(submitted_at=after[0], id__gt=after[1]),
                submitted_at__gte=after[0],
            )
        chunk = list(page.values_list(*fields)[:chunk_size])
        if not chunk:
            return
        answers: dict[int, dict[str, Any]] = {row[0]: {} for row in chunk}
        for submission_id, key, value in _answer_values(
            ids=list(answers), using=base.db
        ):
            found = answers[submission_id]
            # A key repeated within one submission keeps every value.
            found[key] = (
                [*_as_list(found[key]), *_as_list(value)] if key in found else value
            )
        for pk, submitted_at, bot, handler_name, conversation_id, user_id in chunk:
            yield ExportSubmission(
                id=pk,
                submitted_at=submitted_at,
                bot=bot,
                handler_name=handler_name,
                conversation_id=conversation_id,
                user_id=user_id,
                answers=answers[pk],
            )
        if len(chunk) < chunk_size:
            return
        after = (chunk[-1][1], chunk[-1][0])


#: A string answer as its text: no JSON to decode.
_STRING_TEXT = Func(
    "value",
    template="(CASE WHEN jsonb_typeof(%(expressions)s) = 'string' "
    "THEN %(expressions)s #>> '{}' END)",
    output_field=TextField(),
)
#: Any other answer as JSON text, decoded in Python as Django would.
_OTHER_JSON = Func(
    "value",
    template="(CASE WHEN jsonb_typeof(%(expressions)s) <> 'string' "
    "THEN %(expressions)s::text END)",
    output_field=TextField(),
)


def _answer_values(*, ids: list[int], using: str) -> Iterator[tuple[int, str, Any]]:
    """(submission id, key, value) of the answers of ``ids``, in order.

    On PostgreSQL, Django's ``JSONField`` runs ``json.loads`` on every value
    (a third of the export's time); most answers are strings, which the
    database can hand over as plain text, so only the others are decoded.
    """
    answers = (
        FormAnswer.objects.using(using)
        .filter(submission_id__in=ids)
        .order_by("submission_id", "position")
    )
    if connections[using].vendor != "postgresql":
        yield from answers.values_list("submission_id", "key", "value")
        return
    loads = json.loads
    for submission_id, key, text, other in answers.values_list(
        "submission_id", "key", _STRING_TEXT, _OTHER_JSON
    ):
        if text is None:  # a number, a list, an object, JSON null or SQL NULL
            text = None if other is None else loads(other)
        yield submission_id, key, text


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- search --------------------------------------------------------------------

#: Shorter search terms match only the exact columns (a trigram is 3 characters).
ANSWER_SEARCH_MIN_LENGTH = 3
#: Answer text found in this share of the submissions (or more) is searched
#: by walking the newest submissions, not by collecting every match.
COMMON_SHARE = 0.02


class ProbeEachRow(Exists):
    """``EXISTS`` that PostgreSQL tests per outer row, never as a hashed set.

    ``OFFSET 0`` keeps the planner from collecting the whole subquery first:
    for a word in a fifth of all answers that read 225,000 rows (0.9 s) where
    the newest page needs a few hundred index probes (2 ms).
    """

    def as_postgresql(
        self, compiler: Any, connection: Any, **extra: Any
    ) -> tuple[str, list[Any]]:
        return self.as_sql(
            compiler, connection, template="EXISTS(%(subquery)s OFFSET 0)", **extra
        )


def submission_search(
    *,
    submissions: QuerySet[FormSubmission],
    term: str,
    exact: Q,
    hide_sensitive: bool = False,
) -> QuerySet[FormSubmission]:
    """``submissions`` matching ``exact`` (indexed columns) or with an answer containing ``term``.

    One ``id IN (... UNION ...)`` subquery rather than a correlated
    ``EXISTS`` OR-ed with the columns, which made PostgreSQL test every
    submission (2 s at a million). The answer text is matched with
    ``icontains``, served on PostgreSQL by a trigram index
    (``answer_text_trgm_idx``), so only terms of at least
    ``ANSWER_SEARCH_MIN_LENGTH`` characters (a trigram) search answers. A
    common term (``COMMON_SHARE``) walks the newest submissions instead: a
    page of the newest matches is near the top of the time index.

    With ``hide_sensitive`` (a user who sees them masked), sensitive answers
    are not searched: finding a row by a value it masks would tell it.
    """
    if len(term) < ANSWER_SEARCH_MIN_LENGTH:
        return submissions.filter(exact)
    answers = FormAnswer.objects.filter(value_text__icontains=term)
    if hide_sensitive:
        answers = answers.exclude(sensitive_answer_q())
    if _is_common(answers):
        return submissions.filter(
            exact | ProbeEachRow(answers.filter(submission=OuterRef("pk")))
        )
    matching = FormSubmission.objects.filter(exact).order_by().values("pk")
    matching = matching.union(answers.order_by().values("submission_id"))
    return submissions.filter(pk__in=matching)


def _is_common(answers: QuerySet[FormAnswer]) -> bool:
    """Whether ``answers`` is at least ``COMMON_SHARE`` of the submissions.

    One query reading at most that many matches (through the trigram index);
    only on PostgreSQL, where the walk is planned as meant.
    """
    if answers.db and connections[answers.db].vendor != "postgresql":
        return False
    estimate = table_row_estimate(model=FormSubmission, using=answers.db)
    if not estimate:
        return False
    enough = max(int(estimate * COMMON_SHARE), 1)
    return answers.order_by()[:enough].count() >= enough


# --- forms ---------------------------------------------------------------------


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

    Four queries. Counts are one aggregate over the submissions (every form,
    for the total); the latest questions are the answers of each shown
    form's newest submission (by id, which rises with time); failures are
    the failed, timed-out and dead runs since ``failing_since``.
    """
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    rows = list(
        FormSubmission.objects.order_by()
        .values("bot_id", "handler_name")
        .annotate(
            total=Count("id"),
            last_7_days=Count(
                "id", filter=Q(submitted_at__gte=now - timedelta(days=7))
            ),
            today=Count("id", filter=Q(submitted_at__gte=today)),
            last_at=Max("submitted_at"),
            last_id=Max("id"),
        )
        .order_by("-last_at", "handler_name")
    )
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


# --- overview --------------------------------------------------------------------


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


class _WidthBucket(Func):
    """PostgreSQL's ``width_bucket(time, bounds)``: a binary search per row."""

    function = "width_bucket"
    template = "%(function)s(%(expressions)s::timestamptz[])"
    output_field = IntegerField()


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
    if connections[using].vendor == "postgresql":
        return _WidthBucket(F(field), Value(bounds))
    return Case(
        *(
            When(**{f"{field}__lt": bound}, then=Value(n))
            for n, bound in enumerate(bounds)
        ),
        default=Value(len(bounds)),
        output_field=IntegerField(),
    )


def overview(
    *, now: datetime, days: int = 30, recent: timedelta = timedelta(hours=24)
) -> Overview:
    """The last ``days`` days per day, and what needs attention: eight queries.

    Days are in the site's time zone. Each query is bounded by time on an
    index; the per-day counts read only their index, grouped by ids (names
    are read after, for the few bots found): ``submission_time_idx`` covers
    the bot and handler name, ``event_time_idx`` the status (migration 0010).
    """
    tz = timezone.get_current_timezone()
    today = timezone.localdate(now)
    day_list = [today - timedelta(days=n) for n in range(days - 1, -1, -1)]
    bounds = [
        timezone.make_aware(datetime.combine(day, time.min), tz)
        for day in [*day_list, today + timedelta(days=1)]
    ]
    start, end = bounds[0], bounds[-1]
    per_form: dict[tuple[int, str], list[int]] = {}
    submitted = FormSubmission.objects.filter(
        submitted_at__gte=start, submitted_at__lt=end
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
    deliveries: dict[str, list[int]] = {
        status: [0] * days for status in WebhookEvent.Status.values
    }
    received = WebhookEvent.objects.filter(received_at__gte=start, received_at__lt=end)
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


def table_row_estimate(*, model: type[Model], using: str = "default") -> int | None:
    """PostgreSQL's planner estimate of ``model``'s row count; None elsewhere or unknown.

    ``pg_class.reltuples`` is kept by autovacuum/ANALYZE and costs nothing to
    read, where ``COUNT(*)`` reads the whole table.
    """
    connection = connections[using]
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)",
            [connection.ops.quote_name(model._meta.db_table)],
        )
        row = cursor.fetchone()
    if row is None or row[0] is None or row[0] < 0:  # -1: never analysed
        return None
    return int(row[0])


def webhook_event_replay_queryset(
    *,
    statuses: list[str],
    bot: Bot | None = None,
    handler_name: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    event_ids: list[int] | None = None,
) -> QuerySet[WebhookEvent]:
    """Events to replay, oldest first (the order they arrived)."""
    events = _filtered(
        WebhookEvent.objects.select_related("bot").filter(status__in=statuses),
        time_field="received_at",
        bot=bot,
        handler_name=handler_name,
        since=since,
        until=until,
    )
    if event_ids:
        events = events.filter(pk__in=event_ids)
    return events.order_by("received_at", "id")

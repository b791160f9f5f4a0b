from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.db import connections
from django.db.models import F, Model, Q, QuerySet, Window
from django.db.models.functions import FirstValue, RowNumber

from handlers import registry
from submissions.exports import ExportColumn, ExportSubmission
from submissions.models import Bot, FormAnswer, FormSubmission, WebhookEvent


def bot_get_active(*, slug: str) -> Bot | None:
    return Bot.objects.filter(slug=slug, is_active=True).first()


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
    relabelled question is headed by its current wording. The database sorts;
    only one row per distinct key reaches Python.
    """
    first = (
        FormAnswer.objects.filter(submission__in=_plain(submissions).values("pk"))
        .annotate(
            seen=Window(
                RowNumber(),
                partition_by=[F("key")],
                order_by=[
                    F("submission__submitted_at").asc(),
                    F("submission_id").asc(),
                    F("position").asc(),
                ],
            ),
            latest_label=Window(
                FirstValue("label"),
                partition_by=[F("key")],
                order_by=[
                    F("submission__submitted_at").desc(),
                    F("submission_id").desc(),
                    F("position").desc(),
                ],
            ),
        )
        .filter(seen=1)
        .order_by("submission__submitted_at", "submission_id", "position")
        .values_list("key", "latest_label")
    )
    return [ExportColumn(key=key, label=label or "") for key, label in first]


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
            page = base.filter(
                Q(submitted_at__gt=after[0]) | Q(submitted_at=after[0], id__gt=after[1])
            )
        chunk = list(page.values_list(*fields)[:chunk_size])
        if not chunk:
            return
        answers: dict[int, dict[str, Any]] = {row[0]: {} for row in chunk}
        for submission_id, key, value in (
            FormAnswer.objects.filter(submission_id__in=answers)
            .order_by("submission_id", "position")
            .values_list("submission_id", "key", "value")
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


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


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

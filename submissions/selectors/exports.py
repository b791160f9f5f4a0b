"""Reads for exports: the submissions of a view, their columns and their rows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.db import connections
from django.db.models import (
    F,
    Func,
    Q,
    QuerySet,
    TextField,
)
from django.utils.dateparse import parse_datetime

from submissions.exports import ExportColumn, ExportSubmission
from submissions.models import (
    Bot,
    FormAnswer,
    FormSubmission,
)

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

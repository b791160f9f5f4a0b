"""Reads for exports: the submissions of a view, their columns and their rows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.db.models import (
    F,
    QuerySet,
)

from submissions.exports import (
    ExportColumn,
    ExportOptions,
    ExportSubmission,
    csv_lines,
    csv_text,
    export_rows,
)
from submissions.models import (
    Bot,
    FormSubmission,
)
from submissions.selectors.backends import QuestionPlaces, columns_in_order, reads_for
from submissions.selectors.export_chunks import postgres_csv_lines
from submissions.selectors.export_lines import (
    after_key,
    in_export_order,
    plain_submissions,
)
from submissions.selectors.tallies import Coverage, tallied

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
        plain_submissions(submissions)
        .values(export_id=F("pk"), export_at=F("submitted_at"))
        .query.sql_with_params()
    )
    return reads_for(submissions.db).export_columns(selected, params)


def form_columns(*, bot: Bot, handler_name: str) -> list[ExportColumn]:
    """A form's columns for its table: every question it has asked, first seen first.

    As ``submission_export_columns`` of all its submissions, from the
    question tallies (``selectors.tallies``) and the places of the
    submissions they do not cover yet: at ten million events the column
    query alone read every answer of the form (15 s). A question whose
    answers were all deleted keeps its column (empty) until the tallies
    are rebuilt.
    """

    def read_tallies(coverage: Coverage) -> dict[str, QuestionPlaces]:
        return {
            question.key: QuestionPlaces(
                first=(question.first_at, question.first_id, question.first_position),
                last=(question.last_at, question.last_id, question.last_position),
                label=question.label,
                input_type=question.input_type,
            )
            for question in coverage.questions().filter(
                bot=bot, handler_name=handler_name
            )
        }

    coverage, places = tallied(read_tallies)
    live = FormSubmission.objects.filter(
        coverage.live_submissions(), bot=bot, handler_name=handler_name
    )
    selected, params = (
        live.values(export_id=F("pk"), export_at=F("submitted_at"))
        .order_by()
        .query.sql_with_params()
    )
    for key, found in reads_for(live.db).question_places(selected, params).items():
        places[key] = places[key].widened(found) if key in places else found
    return columns_in_order(places)


def submission_export_iter(
    *,
    submissions: QuerySet[FormSubmission],
    chunk_size: int = EXPORT_CHUNK_SIZE,
) -> Iterator[ExportSubmission]:
    """``submissions`` oldest first, ``chunk_size`` at a time, with their answers.

    Keyset pagination on (submitted_at, id): two indexed queries per chunk
    (``Reads.export_page`` and ``Reads.export_answers``), no cursor held
    open while a slow client downloads, memory bounded by one chunk.
    """
    base = in_export_order(submissions)
    reads = reads_for(base.db)
    fields = (
        "id",
        "submitted_at",
        "bot__slug",
        "handler_name",
        "conversation_id",
        "user_id",
        "received_at",
    )
    after: tuple[datetime, int] | None = None
    while True:
        page = after_key(base, after)
        chunk = reads.export_page(page.values_list(*fields)[:chunk_size])
        if not chunk:
            return
        answers: dict[int, dict[str, Any]] = {row[0]: {} for row in chunk}
        months = [row[6] for row in chunk]
        for submission_id, key, value in reads.export_answers(
            list(answers), (min(months), max(months))
        ):
            found = answers.get(submission_id)
            if found is None:  # a neighbour's, read with the range
                continue
            # A key repeated within one submission keeps every value.
            found[key] = (
                [*_as_list(found[key]), *_as_list(value)] if key in found else value
            )
        for pk, submitted_at, bot, handler_name, conversation_id, user_id, _ in chunk:
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


def submission_csv_lines(
    *,
    submissions: QuerySet[FormSubmission],
    columns: list[ExportColumn],
    options: ExportOptions,
) -> Iterator[str]:
    """The CSV of ``submissions``, line by line (``\\r\\n`` ended), the header first.

    On PostgreSQL the database writes the lines (``selectors.export_lines``);
    elsewhere, and for the lines it leaves, ``exports.export_rows`` does.
    Both write the same bytes.
    """
    if reads_for(submissions.db).writes_csv_lines:
        return postgres_csv_lines(
            submissions=submissions, columns=columns, options=options
        )
    return csv_lines(
        csv_text(
            export_rows(
                columns=columns,
                submissions=submission_export_iter(submissions=submissions),
                options=options,
            )
        )
    )

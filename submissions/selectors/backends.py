"""Reads that differ by database: one small backend per vendor.

``Reads`` is what every read does on any database Django supports;
``SqliteReads`` and ``PostgresReads`` override what their planner or
their types make worth doing differently. The selectors ask
``reads_for(using)``; a second PostgreSQL layout is one new subclass.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import connections
from django.db.models import (
    Case,
    F,
    Func,
    IntegerField,
    Model,
    QuerySet,
    TextField,
    Value,
    When,
)
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from submissions.exports import ExportColumn
from submissions.models import FormAnswer


@dataclass(frozen=True, slots=True)
class QuestionPlaces:
    """Where a question was first and last answered, and its latest wording.

    A place is (submitted at, submission id, position): the order answers are
    exported in, so the order of a form's columns.
    """

    first: tuple[datetime, int, int]
    last: tuple[datetime, int, int]
    label: str
    input_type: str

    def widened(self, other: QuestionPlaces) -> QuestionPlaces:
        """The earliest first place and the latest last place (with its wording)."""
        latest = other if other.last >= self.last else self  # the rows' over the tally
        return QuestionPlaces(
            first=min(self.first, other.first),
            last=latest.last,
            label=latest.label,
            input_type=latest.input_type,
        )


def columns_in_order(places: dict[str, QuestionPlaces]) -> list[ExportColumn]:
    """The columns of ``places``, in first-seen order, headed by their latest wording."""
    return [
        ExportColumn(key=key, label=found.label, input_type=found.input_type)
        for key, found in sorted(places.items(), key=lambda item: item[1].first)
    ]


def _sqlite_place(text: str) -> tuple[datetime, int, int]:
    """A place as SQLite's place string has it: ``<time> <id> <position>``."""
    moment, submission_id, position = text.rsplit(" ", 2)
    parsed = parse_datetime(moment)
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, UTC)
    return parsed, int(submission_id), int(position)


class Reads:
    """The portable SQL."""

    #: Whether a frequent search term is walked through the trigram index as
    #: planned (``selectors.search``); only PostgreSQL plans it so.
    plans_trigram_walks = False

    #: Whether the database writes an export's CSV lines
    #: (``selectors.export_lines``); only PostgreSQL does.
    writes_csv_lines = False

    def __init__(self, using: str = "default") -> None:
        self.using = using

    def export_columns(
        self, selected: str, params: tuple[Any, ...]
    ) -> list[ExportColumn]:
        """The question columns of the submissions ``selected`` (SQL and params
        of ``export_id``, ``export_at`` rows); see ``submission_export_columns``."""
        return columns_in_order(self.question_places(selected, params))

    def question_places(
        self, selected: str, params: tuple[Any, ...]
    ) -> dict[str, QuestionPlaces]:
        """Each question key of the submissions ``selected``: its first and last
        place (submitted at, submission id, position), its latest label and type."""
        connection = connections[self.using]
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
        return {
            key: QuestionPlaces(
                first=place,
                last=latest[key][:3],
                label=latest[key][3] or "",
                input_type=latest[key][4] or "",
            )
            for key, place in first.items()
        }

    def answer_values(
        self, answers: QuerySet[FormAnswer]
    ) -> Iterator[tuple[int, str, Any]]:
        """(submission id, key, value) of ``answers``, in their order."""
        yield from answers.values_list("submission_id", "key", "value")

    def export_page(self, page: QuerySet[Any]) -> list[tuple[Any, ...]]:
        """The rows of ``page`` (a sliced ``values_list``) for an export chunk."""
        return list(page)

    def export_answers(
        self, ids: list[int], received: tuple[datetime, datetime]
    ) -> Iterator[tuple[int, str, Any]]:
        """(submission id, key, value) of the answers of submissions ``ids``
        (whose least and greatest ``received_at`` are ``received``), by
        submission and position; may hold other submissions' answers too,
        which the caller skips."""
        answers = (
            FormAnswer.objects.using(self.using)
            .filter(submission_id__in=ids)
            .order_by("submission_id", "position")
        )
        return self.answer_values(answers)

    def day_number(self, field: str, bounds: list[datetime]) -> Any:
        """Which day of ``bounds`` ``field`` is in, as ``selectors.console._day_number``
        says: a ``CASE`` of comparisons."""

        return Case(
            *(
                When(**{f"{field}__lt": bound}, then=Value(n))
                for n, bound in enumerate(bounds)
            ),
            default=Value(len(bounds)),
            output_field=IntegerField(),
        )

    def row_estimate(self, model: type[Model]) -> int | None:
        """A free estimate of ``model``'s rows; None: there is none."""
        return None


class SqliteReads(Reads):
    def question_places(
        self, selected: str, params: tuple[Any, ...]
    ) -> dict[str, QuestionPlaces]:
        """The same places in one pass on SQLite, whatever the timestamps share.

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
        connection = connections[self.using]
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
        places = {}
        for key, first, last in rows:
            last, input_type, label = last.split("\x1f", 2)
            places[key] = QuestionPlaces(
                first=_sqlite_place(first),
                last=_sqlite_place(last),
                label=label,
                input_type=input_type,
            )
        return places


class _WidthBucket(Func):
    """PostgreSQL's ``width_bucket(time, bounds)``: a binary search per row."""

    function = "width_bucket"
    template = "%(function)s(%(expressions)s::timestamptz[])"
    output_field = IntegerField()


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


#: How much longer than a chunk's id list its id range may be and still be
#: read as a range (``PostgresReads.export_answers``).
EXPORT_RANGE_SLACK = 2


class PostgresReads(Reads):
    plans_trigram_walks = True
    writes_csv_lines = True

    def answer_values(
        self, answers: QuerySet[FormAnswer]
    ) -> Iterator[tuple[int, str, Any]]:
        """Django's ``JSONField`` runs ``json.loads`` on every value (a third of the
        export's time); most answers are strings, which the database can hand
        over as plain text, so only the others are decoded."""
        loads = json.loads
        for submission_id, key, text, other in answers.values_list(
            "submission_id", "key", _STRING_TEXT, _OTHER_JSON
        ):
            if text is None:  # a number, a list, an object, JSON null or SQL NULL
                text = None if other is None else loads(other)
            yield submission_id, key, text

    def c_timestamps(self, cursor: Any) -> None:
        """Make ``cursor`` read ``timestamptz`` with psycopg's own (C) loader.

        Django's, which sets the connection's zone on each value, is written
        in Python and was a tenth of an export's time. Both give aware
        datetimes of the same instant (psycopg's in the session's zone,
        UTC as Django sets it; the export turns every time to UTC)."""
        import psycopg
        from psycopg.pq import Format

        oid = psycopg.adapters.types["timestamptz"].oid
        loader = psycopg.adapters.get_loader(oid, Format.TEXT)
        cursor.cursor.adapters.register_loader(oid, loader)

    def export_page(self, page: QuerySet[Any]) -> list[tuple[Any, ...]]:
        """The page's own SQL, read without Django's per-row converters (its
        fields are ids, text and times: nothing for them to convert)."""
        sql, params = page.query.sql_with_params()
        with connections[self.using].cursor() as cursor:
            self.c_timestamps(cursor)
            cursor.execute(sql, params)  # through Django's wrappers and logging
            return cursor.fetchall()

    def export_answers(
        self, ids: list[int], received: tuple[datetime, datetime]
    ) -> Iterator[tuple[int, str, Any]]:
        """The answers in one index range scan when the ids are close together.

        Submissions are numbered as they arrive, so a chunk taken in time
        order is nearly a run of ids: reading ``submission_id`` from the
        least to the greatest walks the answers' index once, where a list
        of ids descends it once per id (and, partitioned, once per month
        per id). When the run has gaps (a filtered export, a re-read event's
        late submission), more than ``EXPORT_RANGE_SLACK`` times as long as
        the list, the list is used. ``received_at`` bounds both, so only
        the months concerned are read: every answer carries its
        submission's (``services.deliveries.form_answers_build``, the
        re-read and the conversion set it).
        """
        low, high = min(ids), max(ids)
        answers = connections[self.using].ops.quote_name(FormAnswer._meta.db_table)
        if high - low + 1 <= EXPORT_RANGE_SLACK * len(ids):
            which, params = "submission_id BETWEEN %s AND %s", [low, high]
        else:
            which, params = "submission_id = ANY(%s)", [ids]
        sql = (
            "SELECT submission_id, key, CASE WHEN jsonb_typeof(value) = 'string' "  # noqa: S608 - our table name
            "THEN value #>> '{}' END, CASE WHEN jsonb_typeof(value) <> 'string' "
            f"THEN value::text END FROM {answers} WHERE {which} "
            "AND received_at >= %s AND received_at <= %s "
            "ORDER BY submission_id, position"
        )
        with connections[self.using].cursor() as cursor:
            cursor.execute(sql, [*params, *received])
            rows = cursor.fetchall()
        loads = json.loads
        for submission_id, key, text, other in rows:
            if text is None:  # a number, a list, an object, JSON null or SQL NULL
                text = None if other is None else loads(other)
            yield submission_id, key, text

    def day_number(self, field: str, bounds: list[datetime]) -> Any:
        """One ``width_bucket`` per row: at a million events, less than half the
        time of converting each to a local date."""
        return _WidthBucket(F(field), Value(bounds))

    def row_estimate(self, model: type[Model]) -> int | None:
        """``pg_class.reltuples``, kept by autovacuum and ANALYZE (``COUNT(*)``
        reads the whole table).

        A partitioned table's own figure is kept by a manual ``ANALYZE`` only
        (autovacuum analyses its partitions, never the parent): its estimate
        is the sum of its partitions' that have one.
        """
        connection = connections[self.using]
        with connection.cursor() as cursor:
            cursor.execute(
                """
                SELECT CASE WHEN c.relkind = 'p' THEN (
                    SELECT sum(p.reltuples) FILTER (WHERE p.reltuples >= 0)
                    FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhrelid
                    WHERE i.inhparent = c.oid
                ) ELSE c.reltuples END::bigint
                FROM pg_class c WHERE c.oid = to_regclass(%s)
                """,
                [connection.ops.quote_name(model._meta.db_table)],
            )
            row = cursor.fetchone()
        if row is None or row[0] is None or row[0] < 0:  # -1: never analysed
            return None
        return int(row[0])


#: The backend for each database vendor; any other gets ``Reads``.
BACKENDS: dict[str, type[Reads]] = {"sqlite": SqliteReads, "postgresql": PostgresReads}


@functools.cache
def reads_for(using: str = "default") -> Reads:
    return BACKENDS.get(connections[using].vendor, Reads)(using)

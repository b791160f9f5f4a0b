"""CSV lines written by PostgreSQL: the export's fast path.

At ten million events the Python export spent about 60 µs per five-answer
submission, almost all of it on cells: decoding JSON, building typed rows,
turning them back into text, quoting. Here the database writes each line
itself, in the query that reads its chunk, and Python only passes the text
on. It writes what the Python path writes, byte for byte, and only where it
can be sure of it (``tests/submissions/test_export_lines.py`` compares the
two on a corpus made to differ); a line it is not sure of comes back NULL,
and that submission is written by ``exports.export_rows`` as before:

- an answer that is text, a boolean, null, a whole number written without a
  fraction or exponent, or a list of texts is written here; an object, a
  number with a fraction or exponent, or a list holding anything but text
  (whose Python spelling PostgreSQL's ``jsonb`` text does not give) is not;
- a question answered twice in one submission (its values are joined) is not;
- formula escaping (``exports.rows.escape_formula``) is done here, but for a
  cell that starts with ``+`` or ``-`` and holds other than ASCII: whether
  it is a number is Python's to say (its ``\\d`` knows every script's digits);
- quoting is ``csv.writer``'s minimal quoting: a cell holding a comma, a
  quote, a carriage return or a line feed is quoted, its quotes doubled.

A masked cell (``ExportOptions.masked_keys``) is left in its line as a
``MASK_PLACE``, its text beside the line, and masked in Python
(``masking.mask_text``), escaped and quoted there.
Each chunk is one query: its page of submissions (the queryset's own SQL),
their answers by id range or id list as ``PostgresReads.export_answers``
reads them, and the lines, in (submitted_at, id) order.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import connections
from django.db.models import F, Q, QuerySet

from submissions.exports import (
    FORMULA_CHARS,
    FORMULA_PREFIXES,
    ExportColumn,
    ExportOptions,
    csv_lines,
    csv_text,
    escape_formula,
    export_rows,
)
from submissions.masking import mask_text
from submissions.models import FormAnswer, FormSubmission
from submissions.selectors.backends import EXPORT_RANGE_SLACK, reads_for

#: Submissions per query: a chunk's planning (the partitions, this SQL) is
#: a few milliseconds, shared by the chunk's rows.
LINES_CHUNK_SIZE = 5000

#: At most about this many cells per chunk (``chunk_size_for``).
CHUNK_CELLS = 250_000

#: What ``str.isspace`` holds true (``str.lstrip`` strips): a test checks it
#: against every code point.
PYTHON_SPACES = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003"
    "\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def _max_digits() -> int:
    """The longest integer Python turns into text (0 is no limit)."""
    return sys.get_int_max_str_digits() or 10**9


def _literal(text: str) -> str:
    """A SQL string literal of this module's constants (never of input)."""
    return "'" + text.replace("'", "''") + "'"


def _bracket(chars: str) -> str:
    """A regex bracket expression of ``chars``: ``-`` last, nothing special."""
    assert not set(chars) & set("]\\^")  # noqa: S101 - constants only
    ordered = sorted(set(chars) - {"-"})
    return "[" + "".join(ordered) + ("-" if "-" in chars else "") + "]"


_QUOTED = '",\r\n'
#: The first characters that make a cell worth a second look: a formula's,
#: or a space's (a formula may follow it), as code points (``ascii()``).
_FIRST = ",".join(
    str(ord(c)) for c in sorted(set("".join(FORMULA_PREFIXES) + PYTHON_SPACES))
)
#: ``rows._formula_like``: a formula start, or spaces and a formula character.
_FORMULA = _literal(
    f"^({_bracket(''.join(FORMULA_PREFIXES))}"
    f"|{_bracket(PYTHON_SPACES)}+{_bracket(''.join(FORMULA_CHARS))})"
)
#: ``rows.NUMBER_RE`` for ASCII text.
# No backslash: with standard_conforming_strings off, ``\.`` would be ``.``.
_NUMBER = _literal("^[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][+-]?[0-9]+)?$")
_APOSTROPHE = _literal("'")


def _holds_quoted(text: str) -> str:
    # A byte search each: cheaper than a regular expression, which first
    # turns the text into an array of characters.
    return " OR ".join(f"strpos({text}, {_literal(c)}) > 0" for c in _QUOTED)


def _quoted(text: str) -> str:
    return (
        f"CASE WHEN {_holds_quoted(text)} THEN "
        f"'\"' || replace({text}, '\"', '\"\"') || '\"' ELSE {text} END"
    )


def cell_sql(text: str, *, escape_formulas: bool = True) -> str:
    """SQL of the CSV cell of the text ``text`` (a column), NULL when unsure."""
    if escape_formulas:
        # Only a cell starting with + or - can be a number; Python's digits
        # are more than ASCII's, so only an ASCII one is decided here.
        escaped = (
            f"CASE WHEN {text} !~ {_FORMULA} THEN {text} "
            f"WHEN {text} !~ '^[+-]' THEN {_APOSTROPHE} || {text} "
            f"WHEN octet_length({text}) <> length({text}) THEN NULL "
            f"WHEN {text} ~ {_NUMBER} THEN {text} ELSE {_APOSTROPHE} || {text} END"
        )
        attention = f"ascii({text}) IN ({_FIRST}) OR {_holds_quoted(text)}"
    else:
        escaped = text
        attention = _holds_quoted(text)
    return f"CASE WHEN {attention} THEN {_quoted(f'({escaped})')} ELSE {text} END"


def answer_text_sql(value: str, kind: str, scalar: str) -> str:
    """SQL of ``values.value_as_text`` of the ``jsonb`` ``value``, NULL when unsure.

    ``kind`` is its ``jsonb_typeof`` and ``scalar`` its ``#>> '{}'`` (columns,
    each computed once). A number written with a fraction (``jsonb`` writes
    no exponent) is Python's: its ``float`` may print otherwise.
    """
    strings = (
        f"CASE WHEN NOT jsonb_path_exists({value}, "
        f"'strict $[*] ? (@.type() != \"string\")') THEN array_to_string(ARRAY("
        f"SELECT jsonb_array_elements_text({value})), '; ') END"
    )
    return (
        f"CASE {kind} "
        f"WHEN 'string' THEN {scalar} "
        f"WHEN 'number' THEN CASE WHEN strpos({scalar}, '.') = 0 "
        f"AND length({scalar}) <= {_max_digits()} THEN {scalar} END "
        f"WHEN 'boolean' THEN {scalar} "
        f"WHEN 'null' THEN '' "
        f"WHEN 'array' THEN CASE jsonb_array_length({value}) WHEN 0 THEN '' "
        f"WHEN 1 THEN CASE WHEN jsonb_typeof({value} -> 0) = 'string' "
        f"THEN {value} ->> 0 END ELSE {strings} END "
        f"ELSE CASE WHEN {value} IS NULL THEN '' END END"
    )


#: Holds a masked cell's place in a line (a line holding one of its own is
#: written in Python).
MASK_PLACE = "\uffff"

#: The answers ``masking.mask_value`` leaves as they are: None, null, "".
_EMPTY = "value IS NULL OR kind = 'null' OR (kind = 'string' AND scalar = '')"


#: ``datetime.isoformat`` of the submission's ``submitted_at`` (the CSV's
#: ``received_at`` column) in UTC: microseconds only when there are some.
#: (The only dot is the fraction's, so only a zero fraction is replaced.)
_ISO = (
    "replace(to_char(p.export_at AT TIME ZONE 'UTC', "
    "'YYYY-MM-DD\"T\"HH24:MI:SS.US'), '.000000', '') || '+00:00'"
)


def lines_sql(
    page_sql: str,
    *,
    answers: str,
    columns: int,
    escape_formulas: bool,
    masked: Sequence[int] = (),
) -> str:
    """One chunk's query: ``page_sql`` (``export_*`` columns) and its lines.

    Takes, after ``page_sql``'s own parameters, twice, each question key's
    column (1, 2, ...) as a JSON object. ``masked`` are the masked columns'
    numbers. ``answers`` is the answers' table, quoted. Rows:
    id, submitted_at, the line (``\\r\\n`` ended) or NULL; with ``masked``, a
    ``MASK_PLACE`` in the line for each masked cell, and their texts in order
    (NULL for an empty answer: None, JSON null or ``""``).
    """

    def cell(text: str) -> str:
        return cell_sql(text, escape_formulas=escape_formulas)

    if masked:
        # A masked cell's text goes to Python (``masking.mask_text``); the
        # line holds its place.
        is_masked = f"ord IN ({','.join(str(int(n)) for n in masked)})"
        cells = (
            f"CASE WHEN t IS NULL THEN NULL WHEN {is_masked} THEN "
            f"{_literal(MASK_PLACE)} ELSE {cell('t')} END AS c, "
            f"CASE WHEN {is_masked} AND NOT empty THEN t END AS mask, "
            f"{is_masked} AS is_masked"
        )
        empty = f", {_EMPTY} AS empty"
        masks = (
            ",\n        array_agg(mask ORDER BY ord) FILTER (WHERE is_masked) AS masks"
        )
        masks_out = ", q.masks"
    else:
        cells, empty, masks, masks_out = f"{cell('t')} AS c", "", "", ""

    head = " || ',' || ".join(
        [
            "p.export_id::text",
            f"({_ISO})",
            *(
                f"({cell(f'p.{name}')})"
                for name in ("export_bot", "export_handler", "export_conversation")
            ),
            f"({cell('p.export_user')})",
        ]
    )
    scan = (
        "SELECT a.submission_id AS sid, (%s::jsonb ->> a.key)::int AS ord, a.value, "  # noqa: S608 - our table
        "jsonb_typeof(a.value) AS kind, a.value #>> '{}' AS scalar "
        f"FROM {answers} a WHERE a.received_at BETWEEN (SELECT low_at FROM bounds) "
        "AND (SELECT high_at FROM bounds) AND "
    )
    return f"""
WITH page AS MATERIALIZED ({page_sql}),
bounds AS MATERIALIZED (
    SELECT min(export_id) AS low, max(export_id) AS high,
        min(export_received) AS low_at, max(export_received) AS high_at,
        max(export_id) - min(export_id) < {EXPORT_RANGE_SLACK} * count(*) AS dense
    FROM page),
answers AS (
    {scan} a.submission_id BETWEEN (SELECT low FROM bounds)
        AND (SELECT high FROM bounds) AND (SELECT dense FROM bounds)
    UNION ALL
    {scan} a.submission_id = ANY(ARRAY(SELECT export_id FROM page))
        AND NOT (SELECT dense FROM bounds)),
texts AS (
    SELECT sid, ord, {answer_text_sql("value", "kind", "scalar")} AS t{empty}
    FROM answers WHERE ord IS NOT NULL OFFSET 0),
cells AS (SELECT sid, ord, {cells} FROM texts OFFSET 0),
pieces AS (
    SELECT *, c IS NOT NULL AND ord IS DISTINCT FROM lag(ord) OVER w AS sure,
        repeat(',', ord - coalesce(lag(ord) OVER w, 0)) || c AS piece
    FROM cells WINDOW w AS (PARTITION BY sid ORDER BY ord)),
lines AS (
    SELECT sid, string_agg(piece, '' ORDER BY ord) AS line, max(ord) AS last,
        bool_and(sure) AS sure{masks}
    FROM pieces GROUP BY sid)
SELECT p.export_id, p.export_at,
    CASE WHEN q.sure IS NOT FALSE THEN ({head}) || coalesce(q.line, '')
        || repeat(',', {columns} - coalesce(q.last, 0)) || E'\\r\\n' END{masks_out}
FROM page p LEFT JOIN lines q ON q.sid = p.export_id
ORDER BY p.export_at, p.export_id
"""  # noqa: S608 - Django's SQL for the page, our table and constants


#: A submission's place in an export: (submitted_at, id).
Key = tuple[datetime, int]


def after_key(base: QuerySet[FormSubmission], after: Key | None) -> QuerySet[Any]:
    """``base``'s submissions after the key ``after`` (all of them for None)."""
    if after is None:
        return base
    # The plain >= bounds the index scan; the OR alone was a filter, so every
    # page re-read the index from its start (quadratic).
    return base.filter(
        Q(submitted_at__gt=after[0]) | Q(submitted_at=after[0], id__gt=after[1]),
        submitted_at__gte=after[0],
    )


def _page(
    base: QuerySet[FormSubmission], after: Key | None, until: Key | None, size: int
) -> QuerySet[Any]:
    """The chunk after ``after``: up to ``until`` (whatever its size: nothing
    is left out), or the next ``size`` with no ``until``."""
    base = after_key(base, after)
    if until is not None:
        base = base.filter(
            Q(submitted_at__lt=until[0]) | Q(submitted_at=until[0], id__lte=until[1]),
            submitted_at__lte=until[0],
        )
    page = base.values(
        export_id=F("pk"),
        export_at=F("submitted_at"),
        export_bot=F("bot__slug"),
        export_handler=F("handler_name"),
        export_conversation=F("conversation_id"),
        export_user=F("user_id"),
        export_received=F("received_at"),
    )
    return page if until is not None else page[:size]


def _python_lines(
    submissions: QuerySet[FormSubmission],
    ids: list[int],
    columns: Sequence[ExportColumn],
    options: ExportOptions,
) -> dict[int, str]:
    """The lines the database was unsure of, written by ``export_rows``."""
    from submissions.selectors.exports import submission_export_iter

    rows = submission_export_iter(submissions=submissions.filter(pk__in=ids))
    lines = csv_lines(
        csv_text(export_rows(columns=columns, submissions=rows, options=options))
    )
    next(lines)  # the header
    return {int(line.split(",", 1)[0]): line for line in lines}


def database_lines(
    submissions: QuerySet[FormSubmission],
    columns: Sequence[ExportColumn],
    options: ExportOptions,
    *,
    after: Key | None = None,
    until: Key | None = None,
    size: int = LINES_CHUNK_SIZE,
) -> list[tuple[int, datetime, str | None]]:
    """The submissions after ``after`` (submitted_at, id) up to ``until``, or
    the next ``size``, oldest first: each one's id, submitted_at, and the
    line the database wrote for it, or None where it was unsure. A masked
    cell (``options.masked_keys``) is masked here, in Python, in its place."""
    base = in_export_order(submissions)
    connection = connections[base.db]
    keys = [column.key for column in columns]
    places = json.dumps({key: n for n, key in enumerate(keys, 1)})
    masked = [n for n, key in enumerate(keys, 1) if key in options.masked_keys]
    page_sql, params = _page(base, after, until, size).query.sql_with_params()
    sql = lines_sql(
        page_sql,
        answers=connection.ops.quote_name(FormAnswer._meta.db_table),
        columns=len(keys),
        escape_formulas=options.escape_formulas,
        masked=masked,
    )
    with connection.cursor() as cursor:
        reads_for(base.db).c_timestamps(cursor)
        cursor.execute(sql, [*params, places, places])
        rows = cursor.fetchall()
    if not masked:
        return rows
    return [(pk, at, _masked(line, masks, options)) for pk, at, line, masks in rows]


def _masked(
    line: str | None, masks: list[str | None] | None, options: ExportOptions
) -> str | None:
    """``line`` with each ``MASK_PLACE`` its mask's cell; None when unsure."""
    if line is None:
        return None
    parts = line.split(MASK_PLACE)
    if len(parts) != len(masks or ()) + 1:  # a cell of its own held one
        return None
    out = [parts[0]]
    for text, rest in zip(masks or (), parts[1:], strict=True):
        if text is not None:
            text = mask_text(text)
            if options.escape_formulas:
                text = escape_formula(text)
            out.append(csv_cell(text))
        out.append(rest)
    return "".join(out)


def csv_cell(text: str) -> str:
    """``text`` as ``csv.writer`` writes a cell: quoted when it holds a comma, a
    quote, a carriage return or a line feed, its quotes doubled."""
    if any(c in text for c in _QUOTED):
        return '"' + text.replace('"', '""') + '"'
    return text


def plain_submissions(
    submissions: QuerySet[FormSubmission],
) -> QuerySet[FormSubmission]:
    """``submissions`` without the prefetches and ordering the admin's
    queryset may carry for a page."""
    return submissions.prefetch_related(None).select_related(None).order_by()


def in_export_order(
    submissions: QuerySet[FormSubmission],
) -> QuerySet[FormSubmission]:
    """``submissions`` as an export reads them: by (submitted_at, id)."""
    return plain_submissions(submissions).order_by("submitted_at", "id")


def chunk_size_for(columns: int) -> int:
    """Submissions per chunk: ``LINES_CHUNK_SIZE``, fewer for a wide form, so a
    chunk holds about ``CHUNK_CELLS`` cells at most (memory stays flat)."""
    return max(100, min(LINES_CHUNK_SIZE, CHUNK_CELLS // max(columns, 1)))


def chunk_lines(
    submissions: QuerySet[FormSubmission],
    columns: Sequence[ExportColumn],
    options: ExportOptions,
    *,
    after: Key | None = None,
    until: Key | None = None,
    size: int = LINES_CHUNK_SIZE,
) -> tuple[list[str], Key | None, int]:
    """One chunk's lines (``database_lines``, the ones it was unsure of
    written by Python), its last key and how many submissions it read."""
    rows = database_lines(
        submissions, columns, options, after=after, until=until, size=size
    )
    unsure = [pk for pk, _, line in rows if line is None]
    written = _python_lines(submissions, unsure, columns, options) if unsure else {}
    lines = []
    for pk, _, line in rows:
        if line is None:
            line = written.get(pk)  # None: deleted since
        if line is not None:
            lines.append(line)
    last = (rows[-1][1], rows[-1][0]) if rows else None
    return lines, last, len(rows)

"""Export of form submissions: one row per submission, one column per question.

The pieces are small and composable so the admin, the ``export_submissions``
command and the read API share them::

    columns = submission_export_columns(submissions=qs)        # selectors, 1 query
    rows = submission_export_iter(submissions=qs)              # selectors, chunked
    for text in csv_chunks(csv_rows(columns=columns, submissions=rows)):
        ...                                                    # str, ~64 KB each

``export_rows`` is pure: it turns ``ExportColumn``\\s and ``ExportSubmission``\\s
into rows of typed cells (``int``, ``float``, ``bool``, ``str``, ``datetime``,
``None``), masking and formula escaping applied once, and never touches the
database. ``csv_rows`` (``csv_text`` of those rows) makes each cell text;
``csv_chunks`` writes them as RFC 4180 CSV (``\\r\\n`` line ends, quotes only
where needed) through a write-only pseudo-buffer, as the Django docs'
"Streaming large CSV files" does, optionally after a UTF-8 byte order mark
for spreadsheet programs.

Format: ``submission_id``, ``received_at`` (ISO 8601, UTC), ``bot`` (slug),
``handler``, ``conversation_id``, ``user_id``, then one column per question
key in first-seen order. Lists are joined with ``"; "``, objects are compact
JSON (``value_as_text``), missing answers are empty.

Formula escaping (OWASP "CSV injection"): a cell gets a leading ``'`` when
it begins with ``= + - @`` or their full-width forms (U+FF1D, U+FF0B, U+FF0D,
U+FF20), with a
tab, carriage return or line feed, or with any whitespace followed by one
of those formula characters; a plain number such as ``-5`` is left alone.
A question heading equal to a fixed column's name (or to an earlier
heading) gets `` (question)`` after it, then a number, so every heading is
unique.

XLSX (``xlsx_write``): the same header and rows, each cell written with its
own type, never guessed from its text: text stays text (``01234``, ``1e5``,
``2026-11-28``, ``#N/A``, the escaped ``'=1+1``), numbers are numbers except
integers of more than 15 significant digits (a spreadsheet keeps no more:
they are text), booleans are booleans, ``received_at`` is a date-time cell
holding the UTC wall time (Excel has no time zones) in the format
``yyyy-mm-dd hh:mm:ss "UTC"``. A bold, frozen header with an autofilter;
column widths fitted to the header and the first 200 rows. XlsxWriter's
``constant_memory`` mode keeps one row in memory; a sheet over Excel's
1,048,576 rows goes on in another sheet.

XLSX text (``xlsx_text``, every heading and text cell): XlsxWriter's
``strings_to_formulas``, ``strings_to_urls`` and ``strings_to_numbers`` are
off as well, so no text can become a formula, a link or a number whichever
writer is called. A character no XML file can hold (U+0000 to U+001F but for
tab, line feed and carriage return; U+FFFE, U+FFFF; a lone surrogate)
becomes U+FFFD, so every file opens in every reader; a carriage return, or
CR LF, becomes a line feed (a cell's line break). Text longer than a cell
holds (32,767 UTF-16 units, Excel's limit) is cut to fit and ends with
``XLSX_CUT_MARKER`` saying how long it was; the CSV and the API's JSON carry
it whole.
"""

from __future__ import annotations

import csv
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain, islice
from math import isfinite
from typing import IO, Any
from unicodedata import east_asian_width

from django.http import FileResponse, HttpResponseBase, StreamingHttpResponse
from django.utils import timezone

from submissions.masking import mask_value
from submissions.values import value_as_text

FIXED_COLUMNS: tuple[str, ...] = (
    "submission_id",
    "received_at",
    "bot",
    "handler",
    "conversation_id",
    "user_id",
)
#: Characters that start a formula, in ASCII and full width.
FORMULA_CHARS = frozenset("=+-@\uff1d\uff0b\uff0d\uff20")
#: A cell beginning with one of these is escaped (each is one character).
FORMULA_PREFIXES: tuple[str, ...] = (*sorted(FORMULA_CHARS), "\t", "\r", "\n")
_FORMULA_FIRST = frozenset(FORMULA_PREFIXES)
# A plain decimal number: a spreadsheet reads it as a number, never a formula.
NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
BOM = "\ufeff"
CONTENT_TYPE = "text/csv; charset=utf-8"
#: Roughly how many characters ``csv_chunks`` gathers before yielding.
CHUNK_CHARS = 64 * 1024

#: One typed cell of ``export_rows``: the CSV writes its text, the XLSX its type.
Cell = str | int | float | bool | datetime | None
#: Answer types a cell keeps as they are; any other becomes text.
_KEPT_TYPES = frozenset({str, int, float, bool, type(None)})

XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
XLSX_SHEET_TITLE = "Submissions"
#: Excel's rows per sheet, the header included, and columns.
XLSX_MAX_ROWS = 1_048_576
XLSX_MAX_COLUMNS = 16_384
#: A spreadsheet number is an IEEE double, shown to 15 significant digits:
#: an integer with more is written as text, so no digit is lost.
XLSX_MAX_DIGITS = 15
_XLSX_EXACT_BELOW = 10**XLSX_MAX_DIGITS
_XLSX_LARGEST = 10**308  # Excel's largest number is just under 1E+308
#: ``received_at``: the UTC wall time (Excel has no time zones), saying so.
XLSX_DATETIME_FORMAT = 'yyyy-mm-dd hh:mm:ss "UTC"'
XLSX_DATETIME_WIDTH = len("2025-01-31 23:59:59 UTC")
#: Column widths fit the header and this many first rows, within these bounds.
XLSX_WIDTH_SAMPLE = 200
XLSX_MIN_WIDTH = 6
XLSX_MAX_WIDTH = 60
XLSX_BLOCK_SIZE = 64 * 1024
#: Excel's longest cell text, in UTF-16 code units.
XLSX_MAX_CELL_CHARS = 32_767
#: Ends a cut cell; filled in with the text's full length in characters.
XLSX_CUT_MARKER = " [… cut to fit an Excel cell: {length:,} characters in all]"
# What XML 1.0 cannot carry (XlsxWriter would write the first group as
# _xHHHH_ escapes that most readers but Excel show as they are), and lone
# surrogates (which no UTF-8 file holds: writing one would fail mid-export).
_XLSX_UNSAFE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class ExportOptions:
    labels: bool = False  # head question columns with labels instead of keys
    excel: bool = False  # start with a UTF-8 byte order mark
    escape_formulas: bool = True
    #: Question keys whose answers are masked (submissions.masking).
    masked_keys: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class ExportColumn:
    """One question column: its key, the label to show with ``labels``, its type."""

    key: str
    label: str = ""
    input_type: str = ""


@dataclass(frozen=True, slots=True)
class ExportSubmission:
    """What one CSV row needs; ``answers`` maps question key to JSON value."""

    id: int
    submitted_at: datetime
    bot: str
    handler_name: str
    conversation_id: str
    user_id: str
    answers: Mapping[str, Any] = field(default_factory=dict)


def _formula_like(text: str) -> bool:
    first = text[:1]
    if first in _FORMULA_FIRST:
        return True
    return first.isspace() and text.lstrip()[:1] in FORMULA_CHARS


def escape_formula(text: str) -> str:
    """``text`` made inert for spreadsheets: a formula-like start gets a ``'``."""
    if _formula_like(text) and not NUMBER_RE.fullmatch(text):
        return "'" + text
    return text


def unique_headings(names: Sequence[str]) -> list[str]:
    """Question headings that repeat no fixed column and no earlier heading."""
    taken = set(FIXED_COLUMNS)
    out = []
    for name in names:
        heading, number = name, 1
        while heading in taken:
            heading = (
                f"{name} (question)" if number == 1 else f"{name} (question {number})"
            )
            number += 1
        taken.add(heading)
        out.append(heading)
    return out


def cell(value: Any, *, escape_formulas: bool = True) -> str:
    """One answer as CSV cell text (numbers untouched, formulas escaped)."""
    text = value_as_text(value)
    return escape_formula(text) if escape_formulas else text


def format_timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def header_row(
    columns: Sequence[ExportColumn], *, options: ExportOptions = ExportOptions()
) -> list[str]:
    """The header: fixed columns, then keys, or labels made unique with the key."""
    if not options.labels:
        names = [column.key for column in columns]
    else:
        labels = [column.label.strip() or column.key for column in columns]
        repeated = {label for label, n in Counter(labels).items() if n > 1}
        names = [
            f"{label} ({column.key})" if label in repeated else label
            for label, column in zip(labels, columns, strict=True)
        ]
    if options.escape_formulas:
        names = [escape_formula(name) for name in names]
    return [*FIXED_COLUMNS, *unique_headings(names)]


def export_rows(
    *,
    columns: Sequence[ExportColumn],
    submissions: Iterable[ExportSubmission],
    options: ExportOptions = ExportOptions(),
) -> Iterator[list[Cell]]:
    """The header (text), then one row of typed cells per submission.

    The one place where answers become cells, for every format: masking and
    formula escaping happen here, once. ``submission_id`` is an ``int``,
    ``received_at`` an aware ``datetime`` in UTC; JSON strings, integers,
    finite floats and booleans keep their type; lists (joined with ``"; "``)
    and objects (compact JSON) become text, as do infinities and NaN (no
    spreadsheet holds them); a missing answer or JSON ``null`` is ``None``.
    Only text is formula-escaped: a number is never a formula.
    Answers outside ``columns`` are dropped.
    """
    yield header_row(columns, options=options)
    escape = options.escape_formulas
    keys = [column.key for column in columns]
    masked = options.masked_keys
    # The loops below are ``cell`` and ``escape_formula`` inlined: a million
    # rows make millions of cells, and a function call per cell shows.
    formula_start = _FORMULA_FIRST
    formula_like = _formula_like
    number = NUMBER_RE.fullmatch
    kept = _KEPT_TYPES
    for submission in submissions:
        answers = submission.answers
        row: list[Cell] = [
            submission.id,
            submission.submitted_at.astimezone(UTC),
            submission.bot,
            submission.handler_name,
            submission.conversation_id,
            submission.user_id,
        ]
        for key in keys:
            if key in answers:
                value = answers[key]
                if key in masked:
                    value = mask_value(value)
                if type(value) not in kept or (
                    type(value) is float and not isfinite(value)
                ):
                    value = value_as_text(value)
                row.append(value)
            else:
                row.append(None)
        if escape:
            for i in range(2, len(row)):
                text = row[i]
                if type(text) is not str:
                    continue
                first = text[:1]
                if (
                    first in formula_start or (first.isspace() and formula_like(text))
                ) and not number(text):
                    row[i] = "'" + text
        yield row


def csv_rows(
    *,
    columns: Sequence[ExportColumn],
    submissions: Iterable[ExportSubmission],
    options: ExportOptions = ExportOptions(),
) -> Iterator[list[str]]:
    """``export_rows`` as CSV text: the header, then one row per submission."""
    return csv_text(
        export_rows(columns=columns, submissions=submissions, options=options)
    )


def csv_text(rows: Iterable[list[Cell]]) -> Iterator[list[str]]:
    """Rows of ``export_rows`` (the header first) with every cell as CSV text."""
    rows = iter(rows)
    yield next(rows)  # the header: text already
    text = value_as_text
    for row in rows:
        row[0] = str(row[0])
        row[1] = row[1].isoformat()  # already in UTC
        yield [value if type(value) is str else text(value) for value in row]


class Echo:
    """A write-only file-like object: ``write`` returns what it is given."""

    def write(self, value: str) -> str:
        return value


def csv_lines(rows: Iterable[Sequence[str]]) -> Iterator[str]:
    """Each row as one RFC 4180 line (``\\r\\n``-terminated, minimal quoting)."""
    writer = csv.writer(Echo(), lineterminator="\r\n")
    for row in rows:
        yield writer.writerow(row)


def csv_chunks(
    rows: Iterable[Sequence[str]],
    *,
    excel: bool = False,
    chunk_chars: int = CHUNK_CHARS,
) -> Iterator[str]:
    """CSV text in pieces of about ``chunk_chars``, after a BOM when ``excel``."""
    buffer: list[str] = [BOM] if excel else []
    size = 0
    for line in csv_lines(rows):
        buffer.append(line)
        size += len(line)
        if size >= chunk_chars:
            yield "".join(buffer)
            buffer, size = [], 0
    if buffer:
        yield "".join(buffer)


def export_filename(
    *,
    handler_name: str | None = None,
    now: datetime | None = None,
    extension: str = "csv",
) -> str:
    stamp = (now or timezone.now()).astimezone(UTC).strftime("%Y%m%d-%H%M%S")
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", handler_name or "").strip("-.")
    return f"submissions-{slug + '-' if slug else ''}{stamp}.{extension}"


def _as_download(response: HttpResponseBase, *, filename: str) -> HttpResponseBase:
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def csv_streaming_response(
    chunks: Iterable[str], *, filename: str
) -> StreamingHttpResponse:
    """A download of ``chunks``, streamed: memory stays flat whatever the size."""
    response = StreamingHttpResponse(chunks, content_type=CONTENT_TYPE)
    _as_download(response, filename=filename)
    return response


# --- XLSX ------------------------------------------------------------------------


def xlsx_write(
    rows: Iterable[Sequence[Cell]],
    output: str | os.PathLike[str] | IO[bytes],
    *,
    max_rows: int = XLSX_MAX_ROWS,
) -> int:
    """Write ``export_rows``' header and rows to ``output`` as a workbook.

    Returns the number of rows after the header. XlsxWriter in
    ``constant_memory`` mode keeps one row in memory and spools the sheet to
    a temporary file; the workbook (a zip whose directory comes last) is only
    written to ``output`` at the end. Every cell's type is set explicitly
    (``write_string``, ``write_number``...), never guessed from its text.
    A sheet holds ``max_rows`` rows, its header included; the rows beyond go
    on to "Submissions 2", and so on, each with the header. More columns than
    a sheet holds is a ``ValueError``, raised before anything is written.
    """
    import xlsxwriter  # 0.1 s to import: only exports need it

    rows = iter(rows)
    header = next(rows)
    # Made safe, two headings can become one ("k\x01", "k\x02"): unique again.
    fixed = len(FIXED_COLUMNS)
    header = [
        *header[:fixed],
        *unique_headings([xlsx_text(str(h)) for h in header[fixed:]]),
    ]
    if len(header) > XLSX_MAX_COLUMNS:
        raise ValueError(
            f"This export has {len(header):,} columns; an XLSX sheet holds at "
            f"most {XLSX_MAX_COLUMNS:,}. Export fewer forms at once (by handler) "
            "or to CSV."
        )
    first = list(islice(rows, XLSX_WIDTH_SAMPLE))
    widths = xlsx_column_widths(header, first)
    workbook = xlsxwriter.Workbook(
        output,
        {
            "constant_memory": True,
            # Only ``write()`` guesses; these writers never call it. Off anyway.
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
        },
    )
    workbook.set_properties({"title": "Form submissions"})
    bold = workbook.add_format({"bold": True})
    moment = workbook.add_format({"num_format": XLSX_DATETIME_FORMAT})
    last_column = len(header) - 1
    sheet = _xlsx_sheet(workbook, 1, header, widths, bold)
    row_number, count = 1, 0
    for row in chain(first, rows):
        if row_number == max_rows:
            sheet.autofilter(0, 0, row_number - 1, last_column)
            sheet = _xlsx_sheet(
                workbook, count // (max_rows - 1) + 1, header, widths, bold
            )
            row_number = 1
        _xlsx_row(sheet, row_number, row, moment)
        row_number += 1
        count += 1
    sheet.autofilter(0, 0, row_number - 1, last_column)
    workbook.close()
    return count


def _xlsx_sheet(
    workbook: Any,
    number: int,
    header: Sequence[Cell],
    widths: Sequence[float],
    bold: Any,
) -> Any:
    sheet = workbook.add_worksheet(
        XLSX_SHEET_TITLE if number == 1 else f"{XLSX_SHEET_TITLE} {number}"
    )
    for column, width in enumerate(widths):
        sheet.set_column(column, column, width)
    sheet.freeze_panes(1, 0)
    for column, heading in enumerate(header):
        sheet.write_string(0, column, str(heading), bold)
    return sheet


def _xlsx_row(sheet: Any, row_number: int, row: Sequence[Cell], moment: Any) -> None:
    """One row, each cell written with the writer of its type."""
    for column, value in enumerate(row):
        kind = type(value)
        if kind is str:
            if value:
                sheet.write_string(row_number, column, xlsx_text(value))
        elif kind is int:
            if _xlsx_exact(value):
                sheet.write_number(row_number, column, value)
            else:
                sheet.write_string(row_number, column, str(value))
        elif kind is float:
            sheet.write_number(row_number, column, value)
        elif kind is bool:
            sheet.write_boolean(row_number, column, value)
        elif kind is datetime:
            # Excel has no time zones: the UTC wall time, said in the format.
            sheet.write_datetime(
                row_number,
                column,
                value.astimezone(UTC).replace(tzinfo=None),
                moment,
            )


def xlsx_text(text: str) -> str:
    """``text`` as a cell can hold it: unsafe characters replaced, cut to Excel's limit."""
    length = len(text)
    if _XLSX_UNSAFE.search(text):
        text = _XLSX_UNSAFE.sub("\ufffd", text)
    if "\r" in text:  # a cell's line break is a line feed (XlsxWriter hides a CR)
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    # A code point is one or two UTF-16 units: under half the limit always fits.
    if (
        len(text) <= XLSX_MAX_CELL_CHARS // 2
        or _utf16_units(text) <= XLSX_MAX_CELL_CHARS
    ):
        return text
    marker = XLSX_CUT_MARKER.format(length=length)
    keep = XLSX_MAX_CELL_CHARS - len(marker)
    # Cut on UTF-16 units; "ignore" drops half a surrogate pair left at the end.
    head = text[:keep].encode("utf-16-le")[: keep * 2].decode("utf-16-le", "ignore")
    return head + marker


def _utf16_units(text: str) -> int:
    return len(text) + sum(1 for c in text if c > "\uffff")


def _xlsx_exact(number: int) -> bool:
    """Whether a spreadsheet holds ``number`` without losing a digit."""
    if -_XLSX_EXACT_BELOW < number < _XLSX_EXACT_BELOW:
        return True
    digits = str(abs(number)).rstrip("0")
    return len(digits) <= XLSX_MAX_DIGITS and abs(number) < _XLSX_LARGEST


def _display_width(value: Cell) -> int:
    if value is None:
        return 0
    if type(value) is datetime:
        return XLSX_DATETIME_WIDTH
    if type(value) is bool:
        return 5  # FALSE
    text = value if type(value) is str else str(value)
    return max(
        sum(2 if east_asian_width(c) in "WF" else 1 for c in line[:XLSX_MAX_WIDTH])
        for line in text.split("\n")
    )


def xlsx_column_widths(
    header: Sequence[Cell], rows: Sequence[Sequence[Cell]]
) -> list[float]:
    """A width per column that fits its heading and the cells of ``rows``, capped."""
    widths = [_display_width(heading) + 1 for heading in header]  # bold is wider
    for row in rows:
        for column, value in enumerate(row):
            widths[column] = max(widths[column], _display_width(value))
    return [min(max(width + 2, XLSX_MIN_WIDTH), XLSX_MAX_WIDTH) for width in widths]


def xlsx_file_response(file: IO[bytes], *, filename: str) -> FileResponse:
    """A download of a finished workbook in ``file`` (closed, so deleted, when sent)."""
    response = FileResponse(file, content_type=XLSX_CONTENT_TYPE)
    response.block_size = XLSX_BLOCK_SIZE
    _as_download(response, filename=filename)
    return response

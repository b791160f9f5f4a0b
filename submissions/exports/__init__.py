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
``csv_chunks`` writes them as RFC 4180 CSV (``\r\n`` line ends, quotes only
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

``rows`` makes the typed rows; ``csv_format`` and ``xlsx_format`` write them;
``responses`` serves them. This module is their API.
"""

from submissions.exports.csv_format import (
    BOM,
    CHUNK_CHARS,
    CONTENT_TYPE,
    Echo,
    csv_chunks,
    csv_lines,
    csv_rows,
    csv_text,
    text_chunks,
)
from submissions.exports.responses import (
    csv_streaming_response,
    export_filename,
    xlsx_file_response,
)
from submissions.exports.rows import (
    FIXED_COLUMNS,
    FORMULA_CHARS,
    FORMULA_PREFIXES,
    NUMBER_RE,
    Cell,
    ExportColumn,
    ExportOptions,
    ExportSubmission,
    cell,
    escape_formula,
    export_rows,
    format_timestamp,
    header_row,
    unique_headings,
)
from submissions.exports.xlsx_format import (
    XLSX_BLOCK_SIZE,
    XLSX_CONTENT_TYPE,
    XLSX_CUT_MARKER,
    XLSX_DATETIME_FORMAT,
    XLSX_DATETIME_WIDTH,
    XLSX_MAX_CELL_CHARS,
    XLSX_MAX_COLUMNS,
    XLSX_MAX_DIGITS,
    XLSX_MAX_ROWS,
    XLSX_MAX_WIDTH,
    XLSX_MIN_WIDTH,
    XLSX_SHEET_TITLE,
    XLSX_WIDTH_SAMPLE,
    xlsx_column_widths,
    xlsx_text,
    xlsx_write,
)

__all__ = [
    "BOM",
    "CHUNK_CHARS",
    "CONTENT_TYPE",
    "FIXED_COLUMNS",
    "FORMULA_CHARS",
    "FORMULA_PREFIXES",
    "NUMBER_RE",
    "XLSX_BLOCK_SIZE",
    "XLSX_CONTENT_TYPE",
    "XLSX_CUT_MARKER",
    "XLSX_DATETIME_FORMAT",
    "XLSX_DATETIME_WIDTH",
    "XLSX_MAX_CELL_CHARS",
    "XLSX_MAX_COLUMNS",
    "XLSX_MAX_DIGITS",
    "XLSX_MAX_ROWS",
    "XLSX_MAX_WIDTH",
    "XLSX_MIN_WIDTH",
    "XLSX_SHEET_TITLE",
    "XLSX_WIDTH_SAMPLE",
    "Cell",
    "Echo",
    "ExportColumn",
    "ExportOptions",
    "ExportSubmission",
    "cell",
    "csv_chunks",
    "csv_lines",
    "csv_rows",
    "csv_streaming_response",
    "csv_text",
    "escape_formula",
    "export_filename",
    "export_rows",
    "format_timestamp",
    "header_row",
    "text_chunks",
    "unique_headings",
    "xlsx_column_widths",
    "xlsx_file_response",
    "xlsx_text",
    "xlsx_write",
]

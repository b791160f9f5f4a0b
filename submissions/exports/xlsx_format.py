"""XLSX: rows as a workbook in constant memory (XlsxWriter), every cell typed,
never a formula, every character one an XML file can hold.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from itertools import chain, islice
from typing import IO, Any
from unicodedata import east_asian_width

from submissions.exports.rows import FIXED_COLUMNS, Cell, unique_headings

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

"""CSV: rows as RFC 4180 text, streamed through a write-only pseudo-buffer."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence

from submissions.exports.rows import (
    DEFAULT_OPTIONS,
    Cell,
    ExportColumn,
    ExportOptions,
    ExportSubmission,
    export_rows,
)
from submissions.values import value_as_text

BOM = "\ufeff"


CONTENT_TYPE = "text/csv; charset=utf-8"


#: Roughly how many characters ``csv_chunks`` gathers before yielding.
CHUNK_CHARS = 64 * 1024


def csv_rows(
    *,
    columns: Sequence[ExportColumn],
    submissions: Iterable[ExportSubmission],
    options: ExportOptions = DEFAULT_OPTIONS,
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
    return text_chunks(csv_lines(rows), excel=excel, chunk_chars=chunk_chars)


def text_chunks(
    lines: Iterable[str],
    *,
    excel: bool = False,
    chunk_chars: int = CHUNK_CHARS,
) -> Iterator[str]:
    """CSV ``lines`` gathered in pieces of about ``chunk_chars``, after a BOM when
    ``excel``. Closing it (a download that stopped) closes ``lines`` too, so
    what they hold (connections) is given back at once."""
    buffer: list[str] = [BOM] if excel else []
    size = 0
    try:
        for line in lines:
            buffer.append(line)
            size += len(line)
            if size >= chunk_chars:
                yield "".join(buffer)
                buffer, size = [], 0
        if buffer:
            yield "".join(buffer)
    finally:
        close = getattr(lines, "close", None)
        if close is not None:
            close()

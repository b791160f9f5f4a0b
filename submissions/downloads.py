"""Form submissions as a download, CSV or XLSX: the export feature's files.

One function per format for the admin's export actions, its form pages and
the read API's ``?format=csv`` / ``?format=xlsx``, so each always sends the
file ``export_submissions`` writes.
"""

import dataclasses
import tempfile
from collections.abc import Iterator

from django.db.models import QuerySet
from django.http import FileResponse, StreamingHttpResponse

from submissions.exports import (
    Cell,
    ExportColumn,
    ExportOptions,
    csv_streaming_response,
    export_filename,
    export_rows,
    text_chunks,
    xlsx_file_response,
    xlsx_write,
)
from submissions.masking import is_sensitive
from submissions.models import FormSubmission
from submissions.selectors.exports import (
    submission_csv_lines,
    submission_export_columns,
    submission_export_iter,
)


def _export_columns(
    *,
    submissions: QuerySet[FormSubmission],
    options: ExportOptions,
    mask_sensitive: bool,
) -> tuple[QuerySet[FormSubmission], list[ExportColumn], ExportOptions]:
    """``submissions`` pinned to the database chosen now, their columns, the options.

    One query for the columns now; ``options`` then mask what is sensitive.
    The rows are read from the database chosen now (the replica, for a staff
    GET with one configured), however long the download streams.
    """
    submissions = submissions.using(submissions.db)
    columns = submission_export_columns(submissions=submissions)
    if mask_sensitive:
        options = dataclasses.replace(
            options,
            masked_keys=frozenset(
                c.key
                for c in columns
                if is_sensitive(key=c.key, input_type=c.input_type)
            ),
        )
    return submissions, columns, options


def _export_rows(
    *,
    submissions: QuerySet[FormSubmission],
    options: ExportOptions,
    mask_sensitive: bool,
) -> Iterator[list[Cell]]:
    """The typed rows of ``submissions``, read as they are consumed."""
    submissions, columns, options = _export_columns(
        submissions=submissions, options=options, mask_sensitive=mask_sensitive
    )
    return export_rows(
        columns=columns,
        submissions=submission_export_iter(submissions=submissions),
        options=options,
    )


def submission_csv_response(
    *,
    submissions: QuerySet[FormSubmission],
    options: ExportOptions,
    handler_name: str | None = None,
    mask_sensitive: bool = True,
) -> StreamingHttpResponse:
    """``submissions`` as the admin and ``export_submissions`` write them.

    Sensitive answers are masked unless ``mask_sensitive`` is off (for a user
    with ``submissions.view_sensitive_answers``).

    One query for the columns now, then one or two per chunk of rows while
    the client reads (``submission_csv_lines``): the number of queries does
    not grow with the rows, nor does memory.
    """
    submissions, columns, options = _export_columns(
        submissions=submissions, options=options, mask_sensitive=mask_sensitive
    )
    lines = submission_csv_lines(
        submissions=submissions, columns=columns, options=options
    )
    return csv_streaming_response(
        text_chunks(lines, excel=options.excel),
        filename=export_filename(handler_name=handler_name),
    )


def submission_xlsx_response(
    *,
    submissions: QuerySet[FormSubmission],
    options: ExportOptions,
    handler_name: str | None = None,
    mask_sensitive: bool = True,
) -> FileResponse:
    """``submissions`` as the XLSX workbook ``export_submissions --format xlsx`` writes.

    Same columns, masking and formula escaping as the CSV (``options.excel``
    does not apply). An XLSX file is a zip whose directory is written last,
    so no byte can be sent before the last row is read: the workbook is
    written to an anonymous temporary file first, in constant memory, then
    streamed from it (``FileResponse``, which deletes it when sent). The
    queries, one for the columns and two per 1,000 rows, all run before this
    returns; their number does not grow with the rows.
    """
    rows = _export_rows(
        submissions=submissions, options=options, mask_sensitive=mask_sensitive
    )
    # Anonymous, so deleted when closed: by FileResponse once sent, or below.
    file = tempfile.TemporaryFile(suffix=".xlsx")  # noqa: SIM115
    try:
        xlsx_write(rows, file)
    except BaseException:
        file.close()
        raise
    file.seek(0)
    return xlsx_file_response(
        file, filename=export_filename(handler_name=handler_name, extension="xlsx")
    )

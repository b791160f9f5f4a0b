"""Exports as HTTP responses: CSV streamed, XLSX from a file, with their names."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import IO

from django.http import FileResponse, HttpResponseBase, StreamingHttpResponse
from django.utils import timezone

from submissions.exports.csv_format import CONTENT_TYPE
from submissions.exports.xlsx_format import XLSX_BLOCK_SIZE, XLSX_CONTENT_TYPE


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


def xlsx_file_response(file: IO[bytes], *, filename: str) -> FileResponse:
    """A download of a finished workbook in ``file`` (closed, so deleted, when sent)."""
    response = FileResponse(file, content_type=XLSX_CONTENT_TYPE)
    response.block_size = XLSX_BLOCK_SIZE
    _as_download(response, filename=filename)
    return response

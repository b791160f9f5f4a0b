from typing import Any

from rest_framework.renderers import BaseRenderer

from submissions.exports import XLSX_CONTENT_TYPE


class StreamedFileRenderer(BaseRenderer):
    """Selects a file format by ``?format=`` or ``Accept``, and documents it.

    The view sends the file itself (``submissions.downloads``); a ``Response``
    never reaches this renderer, errors included (they are rendered as JSON).
    """

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: dict[str, Any] | None = None,
    ) -> bytes:
        raise NotImplementedError(f"{self.format} is sent by the view, not rendered.")


class CSVRenderer(StreamedFileRenderer):
    """``?format=csv`` or ``Accept: text/csv``: the CSV, streamed."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"


class XLSXRenderer(StreamedFileRenderer):
    """``?format=xlsx`` or ``Accept:`` the XLSX media type: the workbook."""

    media_type = XLSX_CONTENT_TYPE
    format = "xlsx"
    charset = None
    render_style = "binary"

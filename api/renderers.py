from typing import Any

from rest_framework.renderers import BaseRenderer


class CSVRenderer(BaseRenderer):
    """Makes ``?format=csv`` and ``Accept: text/csv`` select CSV, and documents it.

    The view streams the file itself (``submissions.downloads``); a ``Response`` never
    reaches this renderer, errors included (they are rendered as JSON).
    """

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: dict[str, Any] | None = None,
    ) -> bytes:
        raise NotImplementedError("CSV is streamed by the view, not rendered.")

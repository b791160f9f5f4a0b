from datetime import UTC

from django.utils.dateparse import parse_datetime
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.request import Request


class TimeCursorPagination(CursorPagination):
    """Newest first, by a time column then id: the order of the models' indexes.

    A cursor keeps its place however many rows arrive meanwhile, and a page
    costs one indexed range query at any depth (no ``OFFSET``, no ``COUNT``).
    The cursor's position is checked to be a date-time: a forged one is an
    invalid cursor (404), never a database error.
    """

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_size(self, request: Request) -> int:
        """``page_size`` if given: a whole number from 1, capped at 500; else 400."""
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not raw.isascii() or not raw.isdigit() or int(raw) < 1:
            raise ValidationError(
                {
                    self.page_size_query_param: [
                        f"A whole number from 1 to {self.max_page_size}, not {raw!r}."
                    ]
                }
            )
        return min(int(raw), self.max_page_size)

    def decode_cursor(self, request: Request) -> Cursor | None:
        cursor = super().decode_cursor(request)
        if cursor is None or cursor.position is None:
            return cursor
        try:
            moment = parse_datetime(cursor.position)
            if moment is None or moment.tzinfo is None:
                raise ValueError(cursor.position)
            # The form positions take in the pages this class writes.
            position = str(moment.astimezone(UTC))
        except (ValueError, OverflowError):
            raise NotFound(self.invalid_cursor_message) from None
        return cursor._replace(position=position)


class EventCursorPagination(TimeCursorPagination):
    ordering = ("-received_at", "-id")  # index event_time_idx


class SubmissionCursorPagination(TimeCursorPagination):
    ordering = ("-submitted_at", "-id")  # index submission_time_idx

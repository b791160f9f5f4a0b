"""The one rule for dates people type, shared by the commands and the API filters."""

from datetime import UTC, datetime

import pytest

from submissions.moments import parse_moment


@pytest.mark.parametrize(
    ("text", "end", "moment"),
    [
        ("2025-01-31", False, datetime(2025, 1, 31, tzinfo=UTC)),
        ("2025-01-31", True, datetime(2025, 2, 1, tzinfo=UTC)),
        (" 2025-01-31T14:30 ", False, datetime(2025, 1, 31, 14, 30, tzinfo=UTC)),
        ("2025-01-31T14:30+02:00", False, datetime(2025, 1, 31, 12, 30, tzinfo=UTC)),
    ],
)
def test_dates_and_date_times(text, end, moment, settings):
    settings.TIME_ZONE = "UTC"
    assert parse_moment(text, end=end) == moment


@pytest.mark.parametrize(
    "text", ["", "yesterday", "2025-13-01", "9999-12-31T23:59:59-23:00"]
)
def test_what_names_no_moment_is_a_value_error(text):
    with pytest.raises(ValueError):  # noqa: PT011 - the message varies by cause
        parse_moment(text)

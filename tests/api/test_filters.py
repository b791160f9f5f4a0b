"""The read API's filters: what each selects, and what each refuses."""

import pytest

from tests.api.helpers import EVENTS, SUBMISSIONS, ids

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["rejected", "failed", "processed"]),
        ("bot=demo", ["failed", "processed"]),
        ("handler=division-handler", ["failed"]),
        ("status=failed", ["failed"]),
        ("status=failed&status=rejected", ["rejected", "failed"]),
        ("status=unrouted", []),
        ("since=2025-05-11", ["rejected", "failed"]),
        ("until=2025-05-10", ["processed"]),
        ("until=2025-05-11T09:00:00Z", ["processed"]),
        ("conversation_id=conv-b", ["rejected"]),
        ("user_id=user-a", ["processed"]),
        ("delivery_id=d-1", ["processed"]),
    ],
)
def test_event_filters(client_for_reader, event_rows, query, expected):
    response = client_for_reader.get(f"{EVENTS}?{query}")

    assert ids(response) == [event_rows[name].pk for name in expected]


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("status=lost", "status"),
        ("bot=missing", "bot"),
        ("since=31/01/2025", "since"),
        ("delivery_id=%00", "delivery_id"),
    ],
)
def test_invalid_event_filters_are_400_json(
    client_for_reader, event_rows, query, parameter
):
    response = client_for_reader.get(f"{EVENTS}?{query}")

    assert response.status_code == 400
    assert response.json()["detail"].startswith(
        f"Invalid query parameters: {parameter}: "
    )


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("bot=demo", ["late", "division", "early"]),
        ("bot=other", ["other"]),
        ("handler=division-handler", ["division"]),
        ("handler=nobody", []),
        ("since=2025-05-11", ["late", "division"]),
        ("until=2025-05-11", ["division", "other", "early"]),  # whole day included
        ("until=2025-05-11T09:00:00Z", ["other", "early"]),  # strictly before
        ("since=2025-05-10T09:00:01Z&until=2025-05-12", ["late", "division"]),
        ("since=2025-05-11T10:00:00%2B01:00", ["late", "division"]),  # offset
        ("conversation_id=conv-b", ["late"]),
        ("user_id=user-a", ["early"]),
        ("bot=demo&handler=save-form&since=2025-05-10", ["late", "early"]),
    ],
)
def test_submission_filters(client_for_reader, submission_rows, query, expected):
    response = client_for_reader.get(f"{SUBMISSIONS}?{query}")

    assert ids(response) == [submission_rows[name].pk for name in expected]


@pytest.mark.parametrize(
    ("query", "parameter", "message"),
    [
        ("bot=nope", "bot", "No bot has the slug “nope”."),
        ("bot=no%20pe", "bot", "slug"),
        ("since=yesterday", "since", "Enter a date like 2025-01-31"),
        ("until=2025-13-01", "until", "Enter a date like 2025-01-31"),
        ("until=9999-12-31", "until", "Enter a date"),  # the day after overflows
        ("since=0001-01-01T00:00:00%2B05:00", "since", "Enter a date"),
        ("handler=a%00b", "handler", "Null characters are not allowed."),
        ("conversation_id=%00", "conversation_id", "Null characters"),
    ],
)
def test_invalid_submission_filters_are_400_json(
    client_for_reader, submission_rows, query, parameter, message
):
    response = client_for_reader.get(f"{SUBMISSIONS}?{query}")

    assert response.status_code == 400
    body = response.json()
    assert body["detail"].startswith(f"Invalid query parameters: {parameter}: ")
    assert message in body["detail"]
    assert list(body["errors"]) == [parameter]

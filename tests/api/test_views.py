"""The read API's views: what the events and submissions endpoints list and show."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.api.helpers import EVENTS, SUBMISSIONS, ids
from tests.factories import (
    BotFactory,
    WebhookEventFactory,
    bulk_submissions,
    submission_with_answers,
)

pytestmark = pytest.mark.django_db


def test_event_list_fields(client_for_reader, event_rows):
    rows = {row["id"]: row for row in client_for_reader.get(EVENTS).json()["results"]}

    processed = rows[event_rows["processed"].pk]
    assert processed["bot"] == "demo"
    assert processed["status"] == "processed"
    assert processed["delivery_id"] == "d-1"
    assert processed["submission"] == event_rows["processed"].submission.pk
    assert processed["received_at"] == "2025-05-10T09:00:00Z"
    assert rows[event_rows["failed"].pk]["submission"] is None


def test_event_queries_do_not_grow_with_rows(client_for_reader, bot):
    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            response = client_for_reader.get(f"{EVENTS}?page_size=100")
        assert response.status_code == 200
        return len(queries)

    WebhookEventFactory.create_batch(2, bot=bot)
    few = count()
    for _ in range(15):
        submission_with_answers({"a": 1}, event__bot=BotFactory())
    many = count()

    assert many == few
    assert many <= 4  # token, permissions, page


def test_list_shows_answers_nested_in_form_order(client_for_reader, submission_rows):
    response = client_for_reader.get(SUBMISSIONS)

    rows = {row["id"]: row for row in response.json()["results"]}
    early = rows[submission_rows["early"].pk]
    assert early == {
        "id": submission_rows["early"].pk,
        "event": submission_rows["early"].event_id,
        "bot": "demo",
        "handler_name": "save-form",
        "conversation_id": "conv-a",
        "user_id": "user-a",
        "submitted_at": "2025-05-10T09:00:00Z",
        "answers": [
            {
                "position": 0,
                "key": "name",
                "label": "Name",
                "input_type": "text",
                "value": "Ada",
                "value_text": "Ada",
            },
            {
                "position": 1,
                "key": "topics",
                "label": "Topics",
                "input_type": "text",
                "value": ["billing", "api"],
                "value_text": "billing; api",
            },
        ],
    }


def test_newest_first(client_for_reader, submission_rows):
    response = client_for_reader.get(SUBMISSIONS)

    assert ids(response) == [
        submission_rows["late"].pk,
        submission_rows["division"].pk,
        submission_rows["other"].pk,
        submission_rows["early"].pk,
    ]


def test_bot_secrets_never_appear(client_for_reader, submission_rows, bot):
    body = client_for_reader.get(SUBMISSIONS).content.decode()

    assert bot.secret not in body
    assert "other-bot-secret-value" not in body
    assert "secret" not in body


def test_detail(client_for_reader, submission_rows):
    response = client_for_reader.get(f"{SUBMISSIONS}{submission_rows['division'].pk}/")

    assert response.status_code == 200
    assert [a["value"] for a in response.json()["answers"]] == [10, -4]


def test_missing_detail_is_404_json(client_for_reader, submission_rows):
    response = client_for_reader.get(f"{SUBMISSIONS}999999/")

    assert response.status_code == 404
    assert response.json() == {
        "error": "not_found",
        "detail": "No FormSubmission matches the given query.",
    }


@pytest.mark.parametrize("path", ["abc/", "1e3/", "%C3%A9/", "1/extra/", ""])
def test_every_404_under_api_is_json(client_for_reader, submission_rows, path):
    target = f"{SUBMISSIONS}{path}" if path else "/api/"

    response = client_for_reader.get(target)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == "not_found"


def test_queries_do_not_grow_with_rows_or_answers(client_for_reader, bot):
    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            response = client_for_reader.get(f"{SUBMISSIONS}?page_size=100")
        assert response.status_code == 200
        return len(queries)

    bulk_submissions(2, bot=bot, answers=lambda i: {"a": i})
    few = count()
    bulk_submissions(40, bot=bot, answers=lambda i: {f"q{k}": k for k in range(5)})
    many = count()

    assert many == few
    assert many <= 5  # token, permissions, page, answers

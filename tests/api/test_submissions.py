from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import BotFactory, bulk_submissions, submission_with_answers

pytestmark = pytest.mark.django_db

T0 = datetime(2025, 5, 10, 9, 0, tzinfo=UTC)
URL = "/api/submissions/"


@pytest.fixture
def data(bot):
    other = BotFactory(slug="other", secret="other-bot-secret-value")
    return {
        "early": submission_with_answers(
            {"name": "Ada", "topics": ["billing", "api"]},
            event__bot=bot,
            event__received_at=T0,
            event__conversation_id="conv-a",
            event__user_id="user-a",
        ),
        "late": submission_with_answers(
            {"name": "Bob"},
            event__bot=bot,
            event__received_at=T0 + timedelta(days=2),
            event__conversation_id="conv-b",
        ),
        "division": submission_with_answers(
            {"dividend": 10, "divisor": -4},
            event__bot=bot,
            event__handler_name="division-handler",
            event__received_at=T0 + timedelta(days=1),
        ),
        "other": submission_with_answers(
            {"name": "Cy"}, event__bot=other, event__received_at=T0
        ),
    }


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def test_list_shows_answers_nested_in_form_order(client_for_reader, data):
    response = client_for_reader.get(URL)

    rows = {row["id"]: row for row in response.json()["results"]}
    early = rows[data["early"].pk]
    assert early == {
        "id": data["early"].pk,
        "event": data["early"].event_id,
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


def test_newest_first(client_for_reader, data):
    response = client_for_reader.get(URL)

    assert ids(response) == [
        data["late"].pk,
        data["division"].pk,
        data["other"].pk,
        data["early"].pk,
    ]


def test_bot_secrets_never_appear(client_for_reader, data, bot):
    body = client_for_reader.get(URL).content.decode()

    assert bot.secret not in body
    assert "other-bot-secret-value" not in body
    assert "secret" not in body


def test_detail(client_for_reader, data):
    response = client_for_reader.get(f"{URL}{data['division'].pk}/")

    assert response.status_code == 200
    assert [a["value"] for a in response.json()["answers"]] == [10, -4]


def test_missing_detail_is_404_json(client_for_reader, data):
    response = client_for_reader.get(f"{URL}999999/")

    assert response.status_code == 404
    assert response.json() == {
        "error": "not_found",
        "detail": "No FormSubmission matches the given query.",
    }


@pytest.mark.parametrize("path", ["abc/", "1e3/", "%C3%A9/", "1/extra/", ""])
def test_every_404_under_api_is_json(client_for_reader, data, path):
    target = f"{URL}{path}" if path else "/api/"

    response = client_for_reader.get(target)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == "not_found"


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
def test_filters(client_for_reader, data, query, expected):
    response = client_for_reader.get(f"{URL}?{query}")

    assert ids(response) == [data[name].pk for name in expected]


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
def test_invalid_filters_are_400_json(
    client_for_reader, data, query, parameter, message
):
    response = client_for_reader.get(f"{URL}?{query}")

    assert response.status_code == 400
    body = response.json()
    assert body["detail"].startswith(f"Invalid query parameters: {parameter}: ")
    assert message in body["detail"]
    assert list(body["errors"]) == [parameter]


def test_queries_do_not_grow_with_rows_or_answers(client_for_reader, bot):
    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            response = client_for_reader.get(f"{URL}?page_size=100")
        assert response.status_code == 200
        return len(queries)

    bulk_submissions(2, bot=bot, answers=lambda i: {"a": i})
    few = count()
    bulk_submissions(40, bot=bot, answers=lambda i: {f"q{k}": k for k in range(5)})
    many = count()

    assert many == few
    assert many <= 5  # token, permissions, page, answers

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from submissions.models import WebhookEvent
from tests.factories import BotFactory, WebhookEventFactory, submission_with_answers

pytestmark = pytest.mark.django_db

T0 = datetime(2025, 5, 10, 9, 0, tzinfo=UTC)
URL = "/api/events/"


@pytest.fixture
def data(bot):
    other = BotFactory(slug="other")
    return {
        "processed": submission_with_answers(
            {"name": "Ada"},
            event__bot=bot,
            event__received_at=T0,
            event__conversation_id="conv-a",
            event__user_id="user-a",
            event__delivery_id="d-1",
        ).event,
        "failed": WebhookEventFactory(
            bot=bot,
            status=WebhookEvent.Status.FAILED,
            handler_name="division-handler",
            received_at=T0 + timedelta(days=1),
        ),
        "rejected": WebhookEventFactory(
            bot=other,
            status=WebhookEvent.Status.REJECTED,
            handler_name="",
            received_at=T0 + timedelta(days=2),
            conversation_id="conv-b",
        ),
    }


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def test_list_fields(client_for_reader, data):
    rows = {row["id"]: row for row in client_for_reader.get(URL).json()["results"]}

    processed = rows[data["processed"].pk]
    assert processed["bot"] == "demo"
    assert processed["status"] == "processed"
    assert processed["delivery_id"] == "d-1"
    assert processed["submission"] == data["processed"].submission.pk
    assert processed["received_at"] == "2025-05-10T09:00:00Z"
    assert rows[data["failed"].pk]["submission"] is None


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
def test_filters(client_for_reader, data, query, expected):
    response = client_for_reader.get(f"{URL}?{query}")

    assert ids(response) == [data[name].pk for name in expected]


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("status=lost", "status"),
        ("bot=missing", "bot"),
        ("since=31/01/2025", "since"),
        ("delivery_id=%00", "delivery_id"),
    ],
)
def test_invalid_filters_are_400_json(client_for_reader, data, query, parameter):
    response = client_for_reader.get(f"{URL}?{query}")

    assert response.status_code == 400
    assert response.json()["detail"].startswith(
        f"Invalid query parameters: {parameter}: "
    )


def test_queries_do_not_grow_with_rows(client_for_reader, bot):
    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            response = client_for_reader.get(f"{URL}?page_size=100")
        assert response.status_code == 200
        return len(queries)

    WebhookEventFactory.create_batch(2, bot=bot)
    few = count()
    for _ in range(15):
        submission_with_answers({"a": 1}, event__bot=BotFactory())
    many = count()

    assert many == few
    assert many <= 4  # token, permissions, page

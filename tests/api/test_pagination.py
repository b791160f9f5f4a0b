import base64
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest

from submissions.models import WebhookEvent
from tests.factories import bulk_submissions

pytestmark = pytest.mark.django_db

T0 = datetime(2025, 5, 10, 9, 0, tzinfo=UTC)


def walk(client, url: str) -> list[list[int]]:
    pages = []
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.content
        body = response.json()
        pages.append([row["id"] for row in body["results"]])
        url = body["next"]
    return pages


def test_the_cursor_walks_every_event_once_in_order(client_for_reader, bot):
    # Ties on received_at included: the cursor must not skip or repeat them.
    times = [T0 + timedelta(seconds=i // 4) for i in range(23)]
    WebhookEvent.objects.bulk_create(
        WebhookEvent(bot=bot, received_at=moment, handler_name="h") for moment in times
    )
    expected = list(
        WebhookEvent.objects.order_by("-received_at", "-id").values_list(
            "id", flat=True
        )
    )

    pages = walk(client_for_reader, "/api/events/?page_size=5")

    assert [len(page) for page in pages] == [5, 5, 5, 5, 3]
    assert [pk for page in pages for pk in page] == expected


def test_the_cursor_walks_submissions_with_filters_kept(client_for_reader, bot):
    submissions = bulk_submissions(12, bot=bot, answers=lambda i: {"n": i})
    bulk_submissions(3, bot=bot, handler_name="other", answers=lambda i: {"n": i})

    pages = walk(client_for_reader, "/api/submissions/?handler=save-form&page_size=5")

    assert [pk for page in pages for pk in page] == [
        s.pk for s in reversed(submissions)
    ]


def test_previous_goes_back(client_for_reader, bot):
    bulk_submissions(6, bot=bot, answers=lambda i: {"n": i})
    first = client_for_reader.get("/api/submissions/?page_size=4").json()
    second = client_for_reader.get(first["next"]).json()

    back = client_for_reader.get(second["previous"]).json()

    assert first["previous"] is None
    assert len(second["results"]) == 2
    assert back["results"] == first["results"]


def test_page_size_is_capped(client_for_reader, bot):
    WebhookEvent.objects.bulk_create(
        WebhookEvent(bot=bot, received_at=T0 + timedelta(seconds=i)) for i in range(503)
    )

    default = client_for_reader.get("/api/events/").json()
    capped = client_for_reader.get("/api/events/?page_size=10000").json()

    assert len(default["results"]) == 50
    assert len(capped["results"]) == 500
    assert capped["next"] is not None


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64!",
        base64.b64encode(b"p=garbage").decode(),
        base64.b64encode(b"p=2025-05-10 09:00:00").decode(),  # no offset
        base64.b64encode(b"p=9999-12-31 23:59:59-14:00").decode(),  # overflows UTC
        base64.b64encode(b"o=x").decode(),
    ],
)
def test_a_forged_cursor_is_404_json(client_for_reader, bot, cursor):
    WebhookEvent.objects.create(bot=bot)

    response = client_for_reader.get(f"/api/events/?cursor={quote(cursor)}")

    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "detail": "Invalid cursor"}


@pytest.mark.parametrize("size", ["0", "-1", "abc", "1.5", "٢"])
def test_a_bad_page_size_is_400_json(client_for_reader, bot, size):
    WebhookEvent.objects.create(bot=bot)

    response = client_for_reader.get("/api/events/", {"page_size": size})

    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_query"
    assert "page_size" in body["errors"]


def test_a_page_size_above_the_cap_is_capped(client_for_reader, bot):
    WebhookEvent.objects.bulk_create([WebhookEvent(bot=bot) for _ in range(502)])

    response = client_for_reader.get("/api/events/", {"page_size": "10000"})

    assert response.status_code == 200
    assert len(response.json()["results"]) == 500

"""Shared by the read API's test modules."""

from datetime import UTC, datetime

T0 = datetime(2025, 5, 10, 9, 0, tzinfo=UTC)
EVENTS = "/api/events/"
SUBMISSIONS = "/api/submissions/"


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]

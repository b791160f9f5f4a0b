"""Unrouted URLs and escaped failures: JSON for bots and API clients, HTML for people."""

import pytest
from django.test import RequestFactory

from webhookproject.errors import server_error


@pytest.mark.parametrize(
    "path", ["/webhooks/", "/webhooks/not a slug/", "/webhooks/demo/extra/", "/api/x/"]
)
def test_an_unrouted_machine_url_is_404_json(client, path):
    response = client.post(path, data=b"{}", content_type="application/json")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == "not_found"
    assert path in response.json()["detail"]


def test_an_unrouted_page_for_people_stays_html(client):
    response = client.get("/nothing-here/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(
    ("path", "json"), [("/webhooks/demo/", True), ("/api/events/", True), ("/", False)]
)
def test_a_server_error_page_matches_the_caller(path, json):
    response = server_error(RequestFactory().get(path))

    assert response.status_code == 500
    if json:
        assert response["Content-Type"] == "application/json"
        assert b'"error": "server_error"' in response.content
    else:
        assert response["Content-Type"].startswith("text/html")

"""The edge: JSON errors in debug mode, a bad Host, NUL in admin filters."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from api import views

pytestmark = pytest.mark.django_db

FORM = {"handler": "save-form", "formValues": {"name": "Ada"}}


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("get", "/api/nothing-here/", 404, "not_found"),
        ("get", "/webhooks/", 404, "not_found"),
        ("get", "/webhooks/no-such-bot/", 404, "unknown_bot"),
        ("post", "/webhooks/a/b/c/", 404, "not_found"),
        ("get", "/api/events/not-a-number/", 401, "not_authenticated"),
    ],
)
def test_machine_paths_answer_json_in_debug_mode(
    client, settings, method, path, status, code
):
    settings.DEBUG = True
    response = getattr(client, method)(path)

    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == code
    assert set(response.json()) >= {"error", "detail"}


def test_a_server_error_under_the_api_is_json_in_debug_mode(
    admin_client, settings, monkeypatch
):
    settings.DEBUG = True

    def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(views.WebhookEventViewSet, "list", explode)
    admin_client.raise_request_exception = False

    response = admin_client.get("/api/events/")

    assert response.status_code == 500
    assert response.json() == {
        "error": "server_error",
        "detail": "The server failed to answer; the failure is logged.",
    }


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("path", ["/api/events/", "/admin/", "/"])
def test_a_disallowed_host_is_a_json_400_everywhere(client, settings, debug, path):
    settings.DEBUG = debug
    response = client.get(path, HTTP_HOST="evil.example")

    assert response.status_code == 400
    assert response.json()["error"] == "disallowed_host"
    assert "evil.example" in response.json()["detail"]


@pytest.mark.parametrize(
    "query",
    [
        "q=%00",
        "q=a%00b",
        "handler_name=%00",
        "status__exact=%00",
        "received_at__gte=%00",
        "%00=1",
        "o=%00",
        "p=%00",
    ],
)
@pytest.mark.parametrize("model", ["webhookevent", "formsubmission", "handlerrun"])
def test_a_nul_in_an_admin_filter_or_search_is_a_400(admin_client, model, query):
    response = admin_client.get(
        reverse(f"admin:submissions_{model}_changelist") + "?" + query
    )

    assert response.status_code == 400


def test_the_admin_search_still_works_beside_the_nul_check(admin_client, deliver):
    deliver(FORM)
    response = admin_client.get(
        reverse("admin:submissions_formsubmission_changelist") + "?q=Ada"
    )
    assert response.status_code == 200


@pytest.mark.parametrize("path", ["/admin/r/1/%00/", "/admin/%00/", "/%00"])
def test_a_nul_in_a_path_is_a_400(admin_client, path):
    assert admin_client.get(path).status_code == 400

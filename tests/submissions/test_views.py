"""The webhook view (submissions/views.py): JSON always, only POST, the bot found first."""

import pytest
from django.contrib.auth import get_user_model

from submissions.models import Bot, WebhookEvent

pytestmark = pytest.mark.django_db

DIVIDE = {
    "handler": "division-handler",
    "formValues": {"dividend": "10", "divisor": "4"},
    "conversationId": "conv-1",
    "userId": "user-1",
    "id": "delivery-1",
    "channel": "web",
}


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error", "detail"}
    assert body["error"] == code
    assert len(body["detail"]) > 20
    return body


def test_the_reply_is_json_whatever_the_accept_header(deliver):
    response = deliver(DIVIDE, HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"


def test_csrf_is_not_enforced_even_for_a_logged_in_session(deliver, api_client):
    user = get_user_model().objects.create_user(
        "staff", password="pw-123456789", is_staff=True
    )
    api_client.force_login(user)
    assert deliver(DIVIDE).status_code == 200


def test_unknown_bot_gets_404_and_nothing_is_stored(api_client):
    response = api_client.post("/webhooks/nobody/", data=DIVIDE, format="json")
    assert_error(response, 404, "unknown_bot")
    assert not WebhookEvent.objects.exists()


def test_inactive_bot_gets_404_and_nothing_is_stored(deliver, bot):
    Bot.objects.filter(pk=bot.pk).update(is_active=False)
    assert_error(deliver(DIVIDE), 404, "unknown_bot")
    assert not WebhookEvent.objects.exists()


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"])
def test_other_methods_are_refused_and_stored(api_client, bot, method):
    response = api_client.generic(method, "/webhooks/demo/")
    assert response.status_code == 405
    if method != "HEAD":
        assert_error(response, 405, "method_not_allowed")
    assert response["Allow"] == "POST"
    event = WebhookEvent.objects.get()
    assert response["X-Webhook-Event-Id"] == str(event.pk)
    assert event.status == WebhookEvent.Status.REJECTED
    assert event.error_code == "method_not_allowed"
    assert event.response_status == 405

"""What the serializers show (api/serializers.py): credentials never, raw bodies on detail only."""

import base64

import pytest

from submissions.models import WebhookEvent
from submissions.tokens import sign_token
from tests.factories import WebhookEventFactory

pytestmark = pytest.mark.django_db


URL = "/api/events/"


def test_a_real_delivery_never_shows_its_token(client_for_reader, deliver, bot):
    body = b'{"handler": "save-form", "formValues": {"a": "b"}}'
    token = sign_token(bot.secret, body=body)
    assert deliver(body=body, token=token).status_code == 200
    event = WebhookEvent.objects.get()

    listed = client_for_reader.get(URL)
    detail = client_for_reader.get(f"{URL}{event.pk}/")

    for response in (listed, detail):
        text = response.content.decode()
        assert token not in text
        assert token.split(".")[2] not in text  # not even the signature
        assert bot.secret not in text
    assert detail.json()["headers"]["Authorization"] == "Bearer [redacted]"
    assert detail.json()["submission"] == event.submission.pk


def test_credentials_in_stored_headers_are_redacted_again(client_for_reader, bot):
    # As if stored before intake redacted them, or under an unusual name.
    event = WebhookEventFactory(
        bot=bot,
        headers={
            "Authorization": "Bearer eyJhbGciOi.payload.signature",
            "Cookie": "sessionid=abc",
            "X-Api-Key": "k-123",
            "X-Auth-Token": "t-456",
            "X-Hub-Signature": "sha256=789",
            "Idempotency-Key": "d-9",
            "Content-Type": "application/json",
        },
    )

    headers = client_for_reader.get(f"{URL}{event.pk}/").json()["headers"]

    assert headers == {
        "Authorization": "Bearer [redacted]",
        "Cookie": "[redacted]",
        "X-Api-Key": "[redacted]",
        "X-Auth-Token": "[redacted]",
        "X-Hub-Signature": "[redacted]",
        "Idempotency-Key": "d-9",
        "Content-Type": "application/json",
    }


def test_the_raw_body_is_on_the_detail_page_only(client_for_reader, bot):
    event = WebhookEventFactory(bot=bot, raw_body=b"\xff not utf-8")

    listed = client_for_reader.get(URL).json()["results"][0]
    detail = client_for_reader.get(f"{URL}{event.pk}/").json()

    assert "raw_body" not in listed
    assert base64.b64decode(detail["raw_body"]) == b"\xff not utf-8"
    assert detail["body_size"] == event.body_size

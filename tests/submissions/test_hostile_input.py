"""Every hostile or broken request in the corpus gets its documented answer.

Each case goes through the real endpoint (DRF's client, real database) and
must produce exactly its status and error code, an error body of exactly
``{"error", "detail"}``, one stored ``WebhookEvent`` recording the same answer,
and no ``FormSubmission``.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.test.client import FakePayload
from rest_framework.test import APIClient

from handlers.wire import WireError, parse_delivery
from submissions.conf import DEFAULTS, webhook_settings
from submissions.models import Bot, FormAnswer, FormSubmission, WebhookEvent
from submissions.redaction import REDACTED
from tests.factories import BotFactory
from tests.fixtures.hostile_requests import (
    ACCEPTED_CASES,
    CASES,
    HostileCase,
    Signing,
)

pytestmark = pytest.mark.django_db

DOCUMENTED_REJECTIONS = {
    413: {"payload_too_large"},
    401: {
        "missing_token",
        "malformed_token",
        "invalid_token",
        "invalid_signature",
        "token_expired",
        "token_not_yet_valid",
        "body_digest_mismatch",
    },
    415: {"unsupported_media_type"},
    400: {"invalid_json", "invalid_payload", "disallowed_host", "invalid_chunked_body"},
    405: {"method_not_allowed"},
    411: {"length_required"},
}


@pytest.fixture(autouse=True)
def _corpus_limits(settings):
    # The corpus is written against the default body limits, whatever the env says.
    settings.WEBHOOKS = {
        **settings.WEBHOOKS,
        "MAX_BODY_BYTES": DEFAULTS["MAX_BODY_BYTES"],
        "REJECTED_BODY_BYTES": DEFAULTS["REJECTED_BODY_BYTES"],
    }


@pytest.fixture
def other_bot(db) -> Bot:
    return BotFactory(slug="other-bot")


def post_raw(
    client: APIClient,
    path: str,
    body: bytes,
    *,
    content_type: str | None,
    environ: dict[str, Any],
    method: str = "POST",
    chunked: str = "",
) -> Any:
    """Send exactly ``body``; ``content_type=None`` sends no Content-Type at all.

    ``chunked`` sends no Content-Length but ``Transfer-Encoding: chunked``,
    with the body as gunicorn hands it over (``"decoded"``: a stream that
    ends, ``wsgi.input_terminated``) or as a server that does not decode it
    (``"raw"``).
    """
    request: dict[str, Any] = {
        "PATH_INFO": path,
        "REQUEST_METHOD": method,
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": FakePayload(body),
    }
    if chunked:
        del request["CONTENT_LENGTH"]
        request["HTTP_TRANSFER_ENCODING"] = "chunked"
        request["wsgi.input"] = (
            BrokenChunks() if chunked == "broken" else io.BytesIO(body)
        )
        request["wsgi.input_terminated"] = chunked != "raw"
    if content_type is not None:
        request["CONTENT_TYPE"] = content_type
    request.update(environ)
    return client.request(**request)


class BrokenChunks(io.RawIOBase):
    """A server's decoded stream meeting malformed chunks (gunicorn raises)."""

    def read(self, size: int = -1) -> bytes:
        raise ValueError("Invalid chunk size: 'zz'")


def send(client: APIClient, bot: Bot, other_bot: Bot, case: HostileCase) -> Any:
    raw = case.raw_body()
    environ = dict(case.environ)
    authorization = case.authorization(
        Signing(secret=bot.secret, other_secret=other_bot.secret, body=raw)
    )
    if authorization is not None:
        environ["HTTP_AUTHORIZATION"] = authorization
    return post_raw(
        client,
        f"/webhooks/{bot.slug}{case.path_suffix}",
        raw,
        content_type=case.content_type,
        environ=environ,
        method=case.method,
        chunked=case.chunked,
    )


def test_corpus_covers_every_documented_rejection():
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    assert len(CASES) >= 40
    for status, codes in DOCUMENTED_REJECTIONS.items():
        covered = {case.error for case in CASES if case.status == status}
        assert covered == codes, f"{status}: {codes - covered} not covered"


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_hostile_request_gets_its_documented_answer(
    api_client: APIClient, bot: Bot, other_bot: Bot, case: HostileCase
):
    before = set(WebhookEvent.objects.values_list("pk", flat=True))
    submissions_before = FormSubmission.objects.count()

    response = send(api_client, bot, other_bot, case)

    assert response.status_code == case.status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    if case.status == 405:
        assert response["Allow"] == "POST"
    body = response.json()
    assert set(body) == {"error", "detail"}
    assert body["error"] == case.error
    assert isinstance(body["detail"], str)
    assert body["detail"].strip()
    assert case.detail_contains in body["detail"]
    if case.status == 401:
        assert case.error in response["WWW-Authenticate"]

    new_events = WebhookEvent.objects.exclude(pk__in=before)
    assert new_events.count() == 1, "each request is stored exactly once"
    event = new_events.get()
    assert response["X-Webhook-Event-Id"] == str(event.pk)
    assert event.bot_id == bot.pk
    assert event.status == case.stored_status
    assert event.error_code == case.error
    assert event.response_status == case.status
    assert event.response_body == body

    raw = case.raw_body()
    cap = webhook_settings().rejected_body_bytes
    kept = raw[:cap] if case.stored_status == WebhookEvent.Status.REJECTED else raw
    if case.stored_body is not None:
        kept = case.stored_body
    size = len(raw) if case.stored_size is None else case.stored_size
    assert bytes(event.raw_body) == kept
    assert event.body_size == size
    assert event.body_truncated == (len(kept) < size)

    stored_authorization = event.headers.get("Authorization")
    if stored_authorization is not None:
        assert stored_authorization.endswith(REDACTED)
        assert "." not in stored_authorization, "a token was stored"

    assert FormSubmission.objects.count() == submissions_before
    for name, value in case.stored_headers:
        assert event.headers[name] == value


@pytest.mark.parametrize("case", ACCEPTED_CASES, ids=lambda case: case.id)
def test_hostile_text_in_a_valid_delivery_is_stored_and_answered(
    api_client: APIClient, bot: Bot, other_bot: Bot, case: HostileCase
):
    response = send(api_client, bot, other_bot, case)

    assert response.status_code == 200, response.content[:300]
    assert response.json()["blocks"]
    event = WebhookEvent.objects.get()
    assert response["X-Webhook-Event-Id"] == str(event.pk)
    assert event.status == WebhookEvent.Status.PROCESSED
    assert bytes(event.raw_body) == case.raw_body()
    assert event.body_size == len(case.raw_body())
    submission = FormSubmission.objects.get()
    assert submission.event_id == event.pk
    assert dict(submission.answers.values_list("key", "value")) == {"name": "Ada"}
    for name, value in case.stored_headers:
        assert event.headers[name] == value
    assert "\x00" not in json.dumps(event.headers, ensure_ascii=False)


def test_the_same_hostile_request_twice_is_two_rejected_events(
    api_client: APIClient, bot: Bot, other_bot: Bot
):
    case = next(case for case in CASES if case.id == "tampered-body")

    first = send(api_client, bot, other_bot, case)
    second = send(api_client, bot, other_bot, case)

    assert first.status_code == second.status_code == 401
    assert first["X-Webhook-Event-Id"] != second["X-Webhook-Event-Id"]
    assert (
        list(WebhookEvent.objects.values_list("status", flat=True))
        == [WebhookEvent.Status.REJECTED] * 2
    )


@pytest.mark.parametrize(
    ("number", "status"), [(10**999, 200), (-(10**999), 200), (10**1000, 400)]
)
def test_integer_digit_limit_is_exact_and_storable(deliver, number: int, status: int):
    response = deliver({"handler": "save-form", "formValues": {"n": number}})

    assert response.status_code == status
    if status == 200:
        answer = FormAnswer.objects.get()
        assert answer.value == number
        assert answer.value_text == str(number)
    else:
        assert response.json()["error"] == "invalid_json"
        assert "1001 digits" in response.json()["detail"]
        assert not FormAnswer.objects.exists()


def test_idempotency_key_with_nul_is_refused_before_storage():
    # Through the endpoint this header also reaches the stored headers, which
    # the view must sanitise first; the wire layer refuses it on its own.
    with pytest.raises(WireError, match="Idempotency-Key header contains a NUL"):
        parse_delivery({"handler": "save-form"}, headers={"Idempotency-Key": "k\x00"})

"""Hostile input the request corpus cannot show: redaction that must keep
deliveries apart, tokens planted in any header, and the storage floor.

``test_hostile_input.py`` runs the request corpus, ``test_fuzz_endpoint.py``
feeds arbitrary input; the edge (``tests/webhookproject/test_edge.py``), log
lines (``test_logs.py``) and the sanitiser (``test_fields.py``) have their
own modules.
"""

from __future__ import annotations

import hashlib
import json
import logging

import pytest
from django.db import connection
from django.urls import reverse

from submissions.models import (
    FormAnswer,
    FormSubmission,
    WebhookEvent,
)
from submissions.tokens import sign_token

pytestmark = pytest.mark.django_db

FORM = {"handler": "save-form", "formValues": {"name": "Ada"}}


# -- 3. redaction never changes meaning ----------------------------------------------


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("Bearer aaaaaaaa", "Bearer bbbbbbbb"),
        ("Basic one", "Basic two"),
        ("eyJhbGciOiJIUzI1NiJ9.e30.one", "eyJhbGciOiJIUzI1NiJ9.e30.two"),
        ("JWT x", "JWT y"),
        ("Token abc", "Token def"),
    ],
)
def test_two_idempotency_keys_that_redact_alike_are_two_deliveries(
    deliver, first, second
):
    one = deliver({**FORM, "formValues": {"name": "Ada"}}, HTTP_IDEMPOTENCY_KEY=first)
    two = deliver({**FORM, "formValues": {"name": "Eve"}}, HTTP_IDEMPOTENCY_KEY=second)

    assert one.status_code == two.status_code == 200
    events = WebhookEvent.objects.order_by("pk")
    assert [e.status for e in events] == [WebhookEvent.Status.PROCESSED] * 2
    # A credential-shaped key identifies the delivery by its digest, exactly.
    assert [e.delivery_id for e in events] == [
        "sha256:" + hashlib.sha256(key.encode()).hexdigest() for key in (first, second)
    ]
    assert sorted(FormAnswer.objects.values_list("value", flat=True)) == ["Ada", "Eve"]
    # Stored redacted, alike: the id is never read back from the stored copy.
    assert events[0].headers["Idempotency-Key"] == events[1].headers["Idempotency-Key"]


def test_the_same_idempotency_key_is_still_one_delivery(deliver):
    deliver(FORM, HTTP_IDEMPOTENCY_KEY="Bearer same")
    copy = deliver(FORM, HTTP_IDEMPOTENCY_KEY="Bearer same")

    assert copy.status_code == 200
    assert copy["X-Webhook-Original-Event-Id"]
    assert FormSubmission.objects.count() == 1


PLANTED = sign_token("a-secret-nobody-has-" + "x" * 30)
SHORT_JWT = "eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    "header",
    [
        "HTTP_X_WEBHOOK_KEY",
        "HTTP_OCP_APIM_SUBSCRIPTION_KEY",
        "HTTP_X_FORWARDED_FOR_TOKEN_THING",
        "HTTP_X_UPSTREAM",
        "HTTP_IDEMPOTENCY_KEY",
        "HTTP_USER_AGENT",
        "HTTP_REFERER",
    ],
)
@pytest.mark.parametrize("token", [PLANTED, SHORT_JWT, f"JWT {PLANTED}"])
def test_a_token_planted_in_any_header_is_never_readable_back(
    deliver, admin_client, header, token
):
    deliver(FORM, **{header: token})
    event = WebhookEvent.objects.get()
    secret_part = token.removeprefix("JWT ").split(".")[-1]

    assert secret_part not in json.dumps(event.headers)
    pages = [
        admin_client.get(
            reverse("admin:submissions_webhookevent_change", args=[event.pk])
        ),
        admin_client.get(reverse("admin:submissions_webhookevent_changelist")),
        admin_client.get(f"/api/events/{event.pk}/"),
        admin_client.get("/api/events/"),
    ]
    for page in pages:
        assert page.status_code == 200
        assert secret_part not in page.content.decode()


# -- 6. the floor ---------------------------------------------------------------------

TRIGGER_NAME = "refuse_boom_handler"


@pytest.fixture
def refusing_database():
    """A real database failure: the event table refuses handler name 'boom'."""
    table = WebhookEvent._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"""CREATE FUNCTION {TRIGGER_NAME}() RETURNS trigger AS $$
                BEGIN
                    IF NEW.handler_name = 'boom' THEN
                        RAISE EXCEPTION 'forced failure for the test';
                    END IF;
                    RETURN NEW;
                END $$ LANGUAGE plpgsql"""
            )
            cursor.execute(
                f"CREATE TRIGGER {TRIGGER_NAME} BEFORE INSERT ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION {TRIGGER_NAME}()"
            )
        else:
            cursor.execute(
                f"CREATE TRIGGER {TRIGGER_NAME} BEFORE INSERT ON {table} "
                "WHEN NEW.handler_name = 'boom' "
                "BEGIN SELECT RAISE(ABORT, 'forced failure for the test'); END"
            )
    yield
    with connection.cursor() as cursor:
        cursor.execute(
            f"DROP TRIGGER {TRIGGER_NAME}"
            + (f" ON {table}" if connection.vendor == "postgresql" else "")
        )
        if connection.vendor == "postgresql":
            cursor.execute(f"DROP FUNCTION {TRIGGER_NAME}()")


def test_when_storing_fails_the_caller_gets_json_and_a_minimal_event_is_kept(
    deliver, refusing_database, caplog
):
    body = json.dumps({"handler": "boom", "formValues": {"name": "Ada"}}).encode()
    with caplog.at_level(logging.ERROR, logger="submissions.intake"):
        response = deliver(body=body, HTTP_X_REQUEST_ID="req-floor-1")

    assert response.status_code == 503
    assert response["Retry-After"]
    reply = response.json()
    assert reply["error"] == "storage_failed"
    assert "req-floor-1" in reply["detail"]
    event = WebhookEvent.objects.get()
    assert response["X-Webhook-Event-Id"] == str(event.pk)
    assert event.status == WebhookEvent.Status.REJECTED
    assert event.error_code == "storage_failed"
    assert "forced failure for the test" in event.error_detail
    assert event.body_size == len(body)
    assert event.body_sha256 == hashlib.sha256(body).hexdigest()
    assert event.response_status == 503
    assert not FormSubmission.objects.exists()
    (logged,) = [r for r in caplog.records if r.name == "submissions.intake"]
    assert logged.request_id == "req-floor-1"
    assert logged.exc_info is not None

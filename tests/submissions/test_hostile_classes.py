"""The classes of hostile input beyond the corpus: meaning-preserving redaction,
the edge (admin and API errors in debug mode, NUL in the admin), log lines,
the storage floor, and every text column taking any text.

``test_hostile_input.py`` runs the request corpus; ``test_fuzz_endpoint.py``
and the property tests below feed arbitrary text.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from typing import Any

import pytest
from django.db import connection
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api import views
from submissions.fields import REPLACEMENT, storable_text
from submissions.models import (
    FormAnswer,
    FormSubmission,
    HandlerRun,
    WebhookEvent,
)
from submissions.tokens import sign_token
from tests.factories import BotFactory
from webhookproject.logs import PlainFormatter

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


# -- 2. the edge: JSON in debug mode, NUL in the admin ------------------------------------


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


# -- 5. logs --------------------------------------------------------------------------


def test_a_handler_name_with_a_newline_cannot_forge_a_plain_log_line(deliver, caplog):
    formatter = PlainFormatter("{levelname} {name} {message}", style="{")
    with caplog.at_level(logging.INFO, logger="submissions.intake"):
        deliver({"handler": "x\nINFO forged.logger delivery ok\r\x1b[2K\u2028y"})

    (record,) = [r for r in caplog.records if r.name == "submissions.intake"]
    line = formatter.format(record)
    assert "\n" not in line
    assert "\r" not in line
    assert "\x1b" not in line
    assert "\u2028" not in line
    assert "handler=x\\nINFO forged.logger delivery ok\\r\\x1b[2K\\u2028y" in line


def test_the_plain_formatter_keeps_a_traceback_on_its_lines():
    formatter = PlainFormatter("{message}", style="{")
    try:
        raise ValueError("bad")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, "f", 1, "a\nb", (), None)
        record.exc_info = sys.exc_info()
    text = formatter.format(record)
    assert text.startswith("a\\nb\nTraceback")


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


# -- 1. every text column takes any text ----------------------------------------------

HOSTILE_TEXT = st.text(
    alphabet=st.one_of(
        st.characters(codec=None, exclude_categories=()),
        st.sampled_from(["\x00", "\ud800", "\udfff", "\ud83d", "\n", "\u2028"]),
    ),
    max_size=300,
)


def _text_fields(model: type) -> list[Any]:
    return [
        f
        for f in model._meta.concrete_fields
        if f.get_internal_type() in ("CharField", "TextField")
        and not f.choices
        and f.name not in ("slug",)
    ]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(text=HOSTILE_TEXT, nested=HOSTILE_TEXT)
def test_any_text_in_any_column_is_stored(text, nested):
    bot = BotFactory()
    event = WebhookEvent.objects.create(
        bot=bot,
        headers={text: nested, "x": [nested, {nested: text}]},
        payload={text: nested},
        response_body={"error": text, "detail": nested},
        **{f.name: text for f in _text_fields(WebhookEvent)},
    )
    submission = FormSubmission.objects.create(
        bot=bot, event=event, **{f.name: text for f in _text_fields(FormSubmission)}
    )
    FormAnswer.objects.bulk_create(
        [
            FormAnswer(
                submission=submission,
                position=0,
                value={text: [nested]},
                **{f.name: text for f in _text_fields(FormAnswer)},
            )
        ]
    )
    run = HandlerRun.objects.create(
        event=event,
        attempt=1,
        started_at=event.received_at,
        finished_at=event.received_at,
        duration_ms=1,
        outcome=HandlerRun.Outcome.FAILED,
        reply={"text": nested},
        **{f.name: text for f in _text_fields(HandlerRun)},
    )
    WebhookEvent.objects.filter(pk=event.pk).update(error_detail=nested)

    event.refresh_from_db()
    for field in _text_fields(WebhookEvent):
        if field.name != "error_detail":
            assert getattr(event, field.name) == storable_text(text, field.max_length)
    assert event.error_detail == storable_text(nested)
    stored = json.dumps(event.headers, ensure_ascii=False)
    assert "\x00" not in stored
    stored.encode("utf-8")  # no lone surrogate survived
    run.refresh_from_db()
    assert run.message == storable_text(text)


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ("a\x00b", f"a{REPLACEMENT}b"),
        ("\ud800x", f"{REPLACEMENT}x"),
        ("\ud83d\ude00", "\U0001f600"),  # a pair split in two code points is rejoined
        ("x" * 300, "x" * 255),
        ("plain", "plain"),
    ],
)
def test_the_sanitiser(text, stored):
    assert storable_text(text, 255) == stored

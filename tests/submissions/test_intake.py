"""The intake pipeline through the real endpoint: each documented answer and what it stores."""

import hashlib
import json
import logging

import pytest

from handlers import WebhookHandler, register
from submissions.models import Bot, FormAnswer, FormSubmission, WebhookEvent
from submissions.tokens import sign_token
from tests.factories import BotFactory

pytestmark = pytest.mark.django_db

DIVIDE = {
    "handler": "division-handler",
    "formValues": {"dividend": "10", "divisor": "4"},
    "conversationId": "conv-1",
    "userId": "user-1",
    "id": "delivery-1",
    "channel": "web",
}


def only_event() -> WebhookEvent:
    events = list(WebhookEvent.objects.all())
    assert len(events) == 1, events
    return events[0]


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error", "detail"}
    assert body["error"] == code
    assert len(body["detail"]) > 20
    return body


# --- 200 ---------------------------------------------------------------------


def test_delivery_is_stored_dispatched_and_answered(deliver, bot):
    response = deliver(DIVIDE)

    assert response.status_code == 200
    reply = response.json()
    assert reply == {
        "blocks": [{"type": "text", "text": "10 divided by 4 is 2.5."}],
        "variables": {"result": "2.5"},
    }
    event = only_event()
    assert response["X-Webhook-Event-Id"] == str(event.pk)
    assert event.bot == bot
    assert event.status == WebhookEvent.Status.PROCESSED
    assert event.handler_name == "division-handler"
    assert (event.conversation_id, event.user_id, event.delivery_id) == (
        "conv-1",
        "user-1",
        "delivery-1",
    )
    assert event.payload == DIVIDE  # unknown fields ("channel") kept
    raw = json.dumps(DIVIDE).encode()
    assert bytes(event.raw_body) == raw
    assert event.body_sha256 == hashlib.sha256(raw).hexdigest()
    assert event.body_size == len(raw)
    assert not event.body_truncated
    assert event.response_status == 200
    assert event.response_body == reply
    assert event.duration_ms is not None
    assert event.duration_ms >= 0
    assert event.remote_addr == "127.0.0.1"
    assert event.error_code == ""

    submission = event.submission
    assert (submission.bot, submission.handler_name, submission.conversation_id) == (
        bot,
        "division-handler",
        "conv-1",
    )
    assert submission.submitted_at == event.received_at
    answers = list(
        submission.answers.values_list("position", "key", "value", "value_text")
    )
    assert answers == [(0, "dividend", "10", "10"), (1, "divisor", "4", "4")]


def test_stored_headers_never_hold_the_token(deliver, bot):
    body = json.dumps(DIVIDE).encode()
    token = sign_token(bot.secret, body=body)
    deliver(body=body, token=token, HTTP_COOKIE="sessionid=abc", HTTP_X_TRACE="t-1")
    event = only_event()
    assert event.headers["Authorization"] == "Bearer [redacted]"
    assert event.headers["Cookie"] == "[redacted]"
    assert event.headers["X-Trace"] == "t-1"
    assert token not in json.dumps(event.headers)


def test_credentials_under_any_header_are_never_stored(deliver, bot):
    jwt = sign_token(bot.secret)
    deliver(
        DIVIDE,
        HTTP_X_JWT_ASSERTION="a.b.c-but-long-enough",
        HTTP_X_CLIENT_KEY="ck-1",
        HTTP_X_FORWARDED_AUTHORIZATION="Basic dXNlcjpwYXNz",
        HTTP_X_UPSTREAM=jwt,
        HTTP_X_PROXY_CREDS="Bearer abc.def",
        HTTP_IDEMPOTENCY_KEY="key-7",
        HTTP_X_REQUEST_ID="req-1",
    )
    headers = only_event().headers
    assert headers["X-Jwt-Assertion"] == "[redacted]"
    assert headers["X-Client-Key"] == "[redacted]"
    assert headers["X-Forwarded-Authorization"] == "Basic [redacted]"
    assert headers["X-Upstream"] == "[redacted]"  # JWT-shaped, whatever the name
    assert headers["X-Proxy-Creds"] == "Bearer [redacted]"
    assert headers["Idempotency-Key"] == "key-7"
    assert headers["X-Request-Id"] == "req-1"
    assert jwt not in json.dumps(headers)


def test_list_form_values_keep_order_labels_and_types(deliver):
    payload = {
        "handler": "save-form",
        "formValues": [
            {"key": "name", "title": "Your name", "type": "text", "value": "Zoë"},
            {
                "key": "topics",
                "question": "Topics?",
                "type": "multi",
                "value": ["a", "b"],
            },
            {"key": "address", "label": "Address", "value": {"city": "Leeds"}},
            {"key": "age", "type": "number", "value": 41},
        ],
    }
    response = deliver(payload)
    assert response.status_code == 200
    assert response.json()["blocks"][0]["text"].startswith("Thank you")
    answers = FormAnswer.objects.order_by("position")
    assert [(a.key, a.label, a.input_type, a.value, a.value_text) for a in answers] == [
        ("name", "Your name", "text", "Zoë", "Zoë"),
        ("topics", "Topics?", "multi", ["a", "b"], "a; b"),
        ("address", "Address", "", {"city": "Leeds"}, '{"city":"Leeds"}'),
        ("age", "", "number", 41, "41"),
    ]


@pytest.mark.parametrize("form", [None, {}, []])
def test_no_form_values_means_no_submission(deliver, form):
    payload = {"handler": "save-form"}
    if form is not None:
        payload["formValues"] = form
    assert deliver(payload).status_code == 200
    assert only_event().status == WebhookEvent.Status.PROCESSED
    assert not FormSubmission.objects.exists()


def test_snake_case_aliases_are_accepted(deliver):
    payload = {
        "handler_name": "division-handler",
        "form_values": {"dividend": 9, "divisor": 3},
        "conversation_id": "c-9",
        "user_id": 77,
    }
    response = deliver(payload)
    assert response.json()["blocks"][0]["text"] == "9 divided by 3 is 3."
    event = only_event()
    assert (event.conversation_id, event.user_id) == ("c-9", "77")


def test_idempotency_header_is_stored_as_delivery_id(deliver):
    deliver({"handler": "save-form"}, HTTP_IDEMPOTENCY_KEY="key-42")
    assert only_event().delivery_id == "key-42"


def test_division_handler_answers_bad_input_kindly(deliver):
    for values, expected in [
        ({"dividend": "1", "divisor": "0"}, "can't divide by zero"),
        ({"dividend": "ten", "divisor": "2"}, "two numbers"),
        ({"dividend": "7"}, "two numbers"),
    ]:
        response = deliver({"handler": "division-handler", "formValues": values})
        assert response.status_code == 200
        assert expected in response.json()["blocks"][0]["text"]


# --- rotation ------------------------------------------------------------------


def test_previous_secret_still_verifies_after_rotation(deliver, bot):
    old = bot.secret
    bot.previous_secret, bot.secret = old, "n" * 43
    bot.save()
    assert deliver(DIVIDE, secret=old).status_code == 200
    assert deliver(DIVIDE, secret="n" * 43).status_code == 200
    bot.previous_secret = ""
    bot.save()
    assert_error(deliver(DIVIDE, secret=old), 401, "invalid_signature")


# --- 401 -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"token": None}, "missing_token"),
        ({"authorization": "Basic dXNlcjpwYXNz"}, "malformed_token"),
        ({"authorization": "Bearer"}, "malformed_token"),
        ({"token": "garbage"}, "malformed_token"),
        ({"secret": "w" * 43}, "invalid_signature"),
        (
            {"token": "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ4In0."},
            "invalid_token",
        ),
    ],
)
def test_bad_tokens_get_401_and_are_stored_rejected(deliver, kwargs, code):
    response = deliver(DIVIDE, **kwargs)
    assert_error(response, 401, code)
    assert response["WWW-Authenticate"].startswith("Bearer ")
    event = only_event()
    assert event.status == WebhookEvent.Status.REJECTED
    assert event.error_code == code
    assert event.response_status == 401
    assert bytes(event.raw_body) == json.dumps(DIVIDE).encode()
    assert event.payload is None  # not parsed before authentication
    assert not FormSubmission.objects.exists()


def test_another_bots_secret_is_refused(deliver):
    other = BotFactory()
    assert_error(deliver(DIVIDE, secret=other.secret), 401, "invalid_signature")


def test_expired_token(deliver, bot):
    token = sign_token(bot.secret, lifetime_seconds=-3600)
    assert_error(deliver(DIVIDE, token=token), 401, "token_expired")


def test_tampered_body_with_digest_claim(deliver, bot):
    token = sign_token(bot.secret, body=json.dumps(DIVIDE).encode())
    tampered = {**DIVIDE, "formValues": {"dividend": "1000", "divisor": "1"}}
    assert_error(deliver(tampered, token=token), 401, "body_digest_mismatch")
    assert only_event().error_code == "body_digest_mismatch"


# --- 400, 413, 415 ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b'{"handler": "save-form"', "invalid_json"),
        (b"", "invalid_json"),
        (b"[1, 2]", "invalid_payload"),
        (b"\xc3\x28", "invalid_json"),
    ],
)
def test_bodies_that_are_not_json_objects_get_400(deliver, body, code):
    assert_error(deliver(body=body), 400, code)
    event = only_event()
    assert (event.status, event.error_code, event.response_status) == (
        "rejected",
        code,
        400,
    )
    assert bytes(event.raw_body) == body


def test_invalid_fields_get_400_and_keep_the_parsed_payload(deliver):
    payload = {"handler": ["not", "a", "string"], "formValues": {"a": 1}}
    body = assert_error(deliver(payload), 400, "invalid_payload")
    assert "`handler`" in body["detail"]
    event = only_event()
    assert event.status == WebhookEvent.Status.REJECTED
    assert event.payload == payload


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "",
        "application/json; charset=latin-1",
    ],
)
def test_wrong_content_type_gets_415(deliver, content_type):
    assert_error(
        deliver(DIVIDE, content_type=content_type), 415, "unsupported_media_type"
    )
    assert only_event().status == WebhookEvent.Status.REJECTED


def test_json_with_utf8_charset_is_fine(deliver):
    assert (
        deliver(DIVIDE, content_type="application/json; charset=UTF-8").status_code
        == 200
    )


def test_body_over_the_cap_gets_413_and_only_its_head_is_kept(deliver, settings):
    settings.WEBHOOKS = {"MAX_BODY_BYTES": 1000, "REJECTED_BODY_BYTES": 100}
    payload = {"handler": "save-form", "formValues": {"essay": "x" * 5000}}
    raw = json.dumps(payload).encode()
    body = assert_error(deliver(payload), 413, "payload_too_large")
    assert str(len(raw)) in body["detail"]
    event = only_event()
    assert event.status == WebhookEvent.Status.REJECTED
    assert event.body_size == len(raw)
    assert bytes(event.raw_body) == raw[:100]
    assert event.body_truncated
    assert event.body_sha256 == ""  # the whole body was never read


def test_rejected_bodies_under_the_cap_are_kept_up_to_the_rejected_cap(
    deliver, settings
):
    settings.WEBHOOKS = {"REJECTED_BODY_BYTES": 10}
    deliver(DIVIDE, token=None)
    event = only_event()
    assert bytes(event.raw_body) == json.dumps(DIVIDE).encode()[:10]
    assert event.body_truncated


# --- 404 -----------------------------------------------------------------------


def test_unknown_handler_gets_404_but_the_answers_are_stored(deliver):
    payload = {**DIVIDE, "handler": "divison-handler"}
    body = assert_error(deliver(payload), 404, "unknown_handler")
    assert "Did you mean 'division-handler'?" in body["detail"]
    event = only_event()
    assert event.status == WebhookEvent.Status.UNROUTED
    assert event.handler_name == "divison-handler"
    assert event.response_status == 404
    assert list(event.submission.answers.values_list("key", "value")) == [
        ("dividend", "10"),
        ("divisor", "4"),
    ]


# --- 500 -----------------------------------------------------------------------


def test_handler_error_is_recorded_and_its_own_writes_are_its_own(
    deliver, handler_registry
):
    @register
    class Exploding(WebhookHandler):
        name = "explode"

        def handle(self, request, response):
            BotFactory(slug="written-by-handler")
            raise RuntimeError("CRM is down")

    response = deliver({"handler": "explode", "formValues": {"email": "a@b.c"}})
    body = assert_error(response, 500, "handler_error")
    assert "CRM is down" not in body["detail"]  # internals stay in the admin
    event = only_event()
    assert event.status == WebhookEvent.Status.FAILED
    assert event.error_code == "handler_error"
    assert event.error_detail == "builtins.RuntimeError: CRM is down"
    assert "Traceback" in event.traceback
    assert 'raise RuntimeError("CRM is down")' in event.traceback
    assert event.response_status == 500
    assert event.submission.answers.get().value == "a@b.c"
    # No transaction wraps a handler: what it wrote before raising stays.
    assert Bot.objects.filter(slug="written-by-handler").exists()


def test_a_bad_reply_is_a_handler_error(deliver, handler_registry):
    @register
    class BadVariable(WebhookHandler):
        name = "bad-variable"

        def handle(self, request, response):
            response.set_variable("when", object())

    assert_error(deliver({"handler": "bad-variable"}), 500, "handler_error")
    assert "not JSON-serialisable" in only_event().error_detail


def test_handler_sees_the_whole_request(deliver, bot, handler_registry):
    seen = {}

    @register
    class Spy(WebhookHandler):
        name = "spy"

        def handle(self, request, response):
            seen["request"] = request
            response.add_text("ok")

    payload = {
        "handler": "spy",
        "formValues": [{"key": "q", "title": "Q?", "type": "text", "value": "A"}],
        "conversationId": "c",
        "userId": "u",
        "id": "d",
        "parameters": {"plan": "gold"},
    }
    deliver(payload)
    request = seen["request"]
    assert request.handler_name == "spy"
    assert dict(request.form_values) == {"q": "A"}
    assert (request.answers[0].label, request.answers[0].input_type) == ("Q?", "text")
    assert (request.conversation_id, request.user_id, request.delivery_id) == (
        "c",
        "u",
        "d",
    )
    assert request.bot == bot
    assert request.payload["parameters"] == {"plan": "gold"}
    assert request.event_id == only_event().pk


# --- query bound, logging ------------------------------------------------------------


def test_queries_do_not_grow_with_the_number_of_answers(
    deliver, django_assert_max_num_queries
):
    # bot lookup, event, submission, answers (one bulk insert), handler run,
    # status update,
    # plus savepoints: the handler's own, and those the test transaction turns
    # the two outer atomic blocks into.
    # 140 answers: Django's SQLite backend puts at most 142 rows in one INSERT.
    for answers in (1, 140):
        payload = {
            "handler": "save-form",
            "formValues": {f"q{i}": i for i in range(answers)},
        }
        with django_assert_max_num_queries(12):
            assert deliver(payload).status_code == 200
    assert FormAnswer.objects.count() == 141


def test_one_log_line_per_delivery_with_its_event_id_and_no_token(deliver, bot, caplog):
    body = json.dumps(DIVIDE).encode()
    token = sign_token(bot.secret, body=body)
    with caplog.at_level(logging.INFO, logger="submissions.intake"):
        deliver(body=body, token=token)
    event = only_event()
    lines = [r for r in caplog.records if r.name == "submissions.intake"]
    assert len(lines) == 1
    assert lines[0].event_id == event.pk
    assert f"event={event.pk}" in lines[0].getMessage()
    assert token not in caplog.text
    assert bot.secret not in caplog.text


# --- the bot cache ---------------------------------------------------------------


def _bot_reads(queries) -> int:
    return sum(
        1
        for q in queries
        if q["sql"].lstrip().upper().startswith("SELECT")
        and '"submissions_bot"' in q["sql"]
    )


def _later(monkeypatch, seconds: float) -> None:
    """Move the bot cache's clock forward (another process's view, seconds on)."""
    from submissions.selectors import bots

    start = bots.monotonic()
    monkeypatch.setattr(bots, "monotonic", lambda: start + seconds)


def test_a_second_delivery_within_the_cache_time_does_not_read_the_bot(deliver):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as first:
        deliver({**DIVIDE, "id": "cache-1"})
    with CaptureQueriesContext(connection) as second:
        response = deliver({**DIVIDE, "id": "cache-2"})
    assert response.status_code == 200
    assert _bot_reads(first.captured_queries) == 1
    assert _bot_reads(second.captured_queries) == 0


def test_with_no_cache_time_every_delivery_reads_the_bot(deliver, settings):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.WEBHOOKS = {"BOT_CACHE_SECONDS": 0}
    deliver({**DIVIDE, "id": "nocache-1"})
    with CaptureQueriesContext(connection) as second:
        deliver({**DIVIDE, "id": "nocache-2"})
    assert _bot_reads(second.captured_queries) == 1


def test_a_bot_deactivated_in_this_process_is_refused_at_once(deliver, bot):
    assert deliver({**DIVIDE, "id": "live-1"}).status_code == 200
    bot.is_active = False
    bot.save()  # the admin does this: post_save drops the cached copy
    assert_error(deliver({**DIVIDE, "id": "live-2"}), 404, "unknown_bot")
    assert WebhookEvent.objects.count() == 1


def test_a_bot_deactivated_elsewhere_is_refused_once_the_cache_time_passes(
    deliver, bot, monkeypatch, settings
):
    settings.WEBHOOKS = {"BOT_CACHE_SECONDS": 5}
    assert deliver({**DIVIDE, "id": "other-1"}).status_code == 200
    # Another process deactivates it: no signal reaches this one.
    Bot.objects.filter(pk=bot.pk).update(is_active=False)
    assert deliver({**DIVIDE, "id": "other-2"}).status_code == 200  # cached
    _later(monkeypatch, 5.1)
    assert_error(deliver({**DIVIDE, "id": "other-3"}), 404, "unknown_bot")


def test_a_secret_rotated_elsewhere_is_accepted_at_once(deliver, bot):
    assert deliver({**DIVIDE, "id": "rot-1"}).status_code == 200  # bot cached
    # Another process rotates the secret: this one still holds the old copy.
    Bot.objects.filter(pk=bot.pk).update(secret="n" * 40, previous_secret="")
    response = deliver({**DIVIDE, "id": "rot-2"}, secret="n" * 40)
    assert response.status_code == 200, response.content
    # ... and the old secret, no longer valid, is refused at once too.
    assert_error(
        deliver({**DIVIDE, "id": "rot-3"}, secret=bot.secret), 401, "invalid_signature"
    )


def test_a_wrong_secret_costs_one_more_read_of_the_bot_and_is_refused(deliver):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    deliver({**DIVIDE, "id": "wrong-1"})  # bot cached
    with CaptureQueriesContext(connection) as refused:
        response = deliver({**DIVIDE, "id": "wrong-2"}, secret="x" * 40)
    assert_error(response, 401, "invalid_signature")
    assert _bot_reads(refused.captured_queries) == 1


def test_an_unknown_slug_is_not_cached(api_client, deliver):
    assert_error(
        api_client.post("/webhooks/late/", data=DIVIDE, format="json"),
        404,
        "unknown_bot",
    )
    # Another process creates it (bulk_create sends no post_save here).
    (late,) = Bot.objects.bulk_create([BotFactory.build(slug="late")])
    late = Bot.objects.get(slug="late")
    assert deliver({**DIVIDE, "id": "late-1"}, to=late).status_code == 200

"""submissions.statements: the cached statement text and its values are Django's own."""

from datetime import timedelta

import pytest
from django.utils import timezone

from submissions import statements
from submissions.models import FormAnswer, FormSubmission, HandlerRun, WebhookEvent

pytestmark = pytest.mark.django_db

HOSTILE = "a\x00b\ud800c" + "x" * 300
WHEN = timezone.now() - timedelta(seconds=3)


def _comparable(params):
    # psycopg's Jsonb wrapper has no equality: compare what it wraps.
    return [(type(p).__name__, getattr(p, "obj", p)) for p in params]


def _event(bot):
    return WebhookEvent(
        bot=bot,
        status=WebhookEvent.Status.RECEIVED,
        handler_name=HOSTILE,
        payload={"nan": float("nan"), "text": HOSTILE, "nested": [1, {"a": None}]},
        delivery_id="d-1",
        received_at=WHEN,
        raw_body=b"\x00\xff",
        headers={"X": HOSTILE},
    )


def _rows(bot):
    event = _event(bot)
    submission = FormSubmission(
        bot=bot,
        handler_name="h",
        submitted_at=event.received_at,
        received_at=event.received_at,
    )
    submission.event_id = statements.id_of("e")
    answers = [
        FormAnswer(
            submission_id=statements.id_of("s"),
            position=n,
            key=f"k{n}",
            label=HOSTILE,
            input_type="text",
            value=value,
            value_text=str(value),
            received_at=event.received_at,
        )
        for n, value in enumerate(["01234", 1e400, {"deep": [HOSTILE]}])
    ]
    return [[event], [submission], answers]


@pytest.mark.parametrize("index", [0, 1, 2], ids=["event", "submission", "answers"])
def test_an_insert_from_the_cache_is_what_djangos_compiler_makes(bot, index):
    returning = index < 2
    statements.insert_sql(_rows(bot)[index], returning=returning)  # fills the cache
    cached_sql, cached = statements.insert_sql(_rows(bot)[index], returning=returning)
    objs = _rows(bot)[index]
    compiled_sql, compiled = statements._insert_compile(
        objs,
        statements._insert_fields(type(objs[0])),
        returning=returning,
        using="default",
    )
    assert cached_sql == compiled_sql
    assert _comparable(cached) == _comparable(compiled)
    assert "\x00" not in repr(cached)  # the sanitiser ran on the cached path too


def test_an_update_from_the_cache_is_what_djangos_compiler_makes(bot):
    from django.db.models.sql import UpdateQuery

    values = {
        "status": "processed",
        "error_detail": HOSTILE,
        "response_status": 200,
        "response_body": {"blocks": [{"text": HOSTILE}]},
        "duration_ms": 1.5,
    }
    statements.update_sql(WebhookEvent, 41, values)  # fills the cache
    cached_sql, cached = statements.update_sql(WebhookEvent, 42, values)
    query = UpdateQuery(WebhookEvent)
    query.add_update_values(values)
    query.add_q(WebhookEvent.objects.filter(pk=42).query.where)
    compiled_sql, compiled = query.get_compiler("default").as_sql()
    assert cached_sql == compiled_sql
    assert _comparable(cached) == _comparable(compiled)


def test_a_run_written_from_the_cache_reads_back(bot):
    # The whole path, twice (the second from the cache), against the database.
    for attempt in (1, 2):
        event = WebhookEvent.objects.create(bot=bot, handler_name="h")
        run = HandlerRun(
            event=event,
            attempt=attempt,
            trigger="delivery",
            handler_name="h",
            started_at=timezone.now(),
            finished_at=timezone.now(),
            duration_ms=1.0,
            outcome="succeeded",
            reply={"blocks": [{"text": HOSTILE}]},
        )
        from submissions.services.runs import handler_run_record

        handler_run_record(
            event=event, run=run, status="processed", error_detail=HOSTILE
        )
        event.refresh_from_db()
        assert event.status == "processed"
        assert "\x00" not in event.error_detail
        assert (
            HandlerRun.objects.get(pk=run.pk).reply["blocks"][0]["text"].startswith("a")
        )

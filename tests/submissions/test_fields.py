"""The sanitiser in front of every text column: any text is stored."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from submissions.fields import REPLACEMENT, storable_json, storable_text
from submissions.models import (
    FormAnswer,
    FormSubmission,
    HandlerRun,
    WebhookEvent,
)
from tests.factories import BotFactory

pytestmark = pytest.mark.django_db


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


def test_numbers_json_cannot_hold_become_their_names():
    assert storable_json({"a": [float("nan"), float("inf"), -float("inf"), 1.5]}) == {
        "a": ["nan", "inf", "-inf", 1.5]
    }

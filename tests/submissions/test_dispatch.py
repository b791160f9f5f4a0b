"""Dispatch: every run recorded, replay after a fix or once a handler exists."""

import io

import pytest
from django.core.management import call_command

from handlers import WebhookHandler, register
from submissions.models import FormSubmission, HandlerRun, WebhookEvent
from submissions.replay import webhook_event_replay

pytestmark = pytest.mark.django_db

FORM = {"formValues": {"email": "a@b.c"}}


def replay(*args: str) -> str:
    out = io.StringIO()
    call_command("replay_events", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def flaky(handler_registry):
    state = {"broken": True}

    @register
    class Flaky(WebhookHandler):
        name = "flaky"

        def handle(self, request, response):
            if state["broken"]:
                raise ConnectionError("CRM unreachable")
            response.add_text(f"saved {request.form_values['email']}")

    return state


def test_every_run_is_recorded(deliver, flaky):
    deliver({"handler": "flaky", **FORM})
    run = HandlerRun.objects.get()
    event = WebhookEvent.objects.get()
    assert (run.event, run.attempt, run.trigger, run.outcome) == (
        event,
        1,
        "delivery",
        "failed",
    )
    assert run.error_type == "builtins.ConnectionError"
    assert run.message == "CRM unreachable"
    assert "ConnectionError" in run.traceback
    assert run.finished_at >= run.started_at
    assert run.reply is None


def test_a_failed_event_replays_after_a_fix(deliver, flaky):
    deliver({"handler": "flaky", **FORM})
    event = WebhookEvent.objects.get()
    flaky["broken"] = False

    run = webhook_event_replay(event=event)

    event.refresh_from_db()
    assert (run.attempt, run.trigger, run.outcome) == (2, "replay", "succeeded")
    assert run.reply["blocks"][0]["text"] == "saved a@b.c"
    assert event.status == WebhookEvent.Status.PROCESSED
    assert event.error_code == event.traceback == ""
    assert event.response_status == 500  # what the bot was sent stays on record
    assert FormSubmission.objects.count() == 1


def test_an_unrouted_event_replays_once_its_handler_exists(deliver, handler_registry):
    deliver({"handler": "late-handler", **FORM})
    event = WebhookEvent.objects.get()
    assert event.status == "unrouted"
    assert webhook_event_replay(event=event).outcome == "unrouted"

    @register
    class Late(WebhookHandler):
        name = "late-handler"

        def handle(self, request, response):
            response.add_text("better late")

    run = webhook_event_replay(event=event)
    event.refresh_from_db()
    assert (run.attempt, run.outcome, event.status) == (3, "succeeded", "processed")
    assert list(event.runs.values_list("outcome", flat=True)) == [
        "unrouted",
        "unrouted",
        "succeeded",
    ]


@pytest.mark.parametrize("status", ["rejected", "duplicate"])
def test_rejected_and_duplicate_events_are_not_replayable(bot, status):
    event = WebhookEvent.objects.create(bot=bot, status=status)
    with pytest.raises(ValueError, match="can be replayed"):
        webhook_event_replay(event=event)

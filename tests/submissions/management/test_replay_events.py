"""replay_events: filters, reports, fails loudly."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from handlers import WebhookHandler, register
from submissions.models import FormSubmission, HandlerRun, WebhookEvent

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


def test_replay_command_filters_and_reports(deliver, flaky, bot):
    deliver({"handler": "flaky", **FORM})
    deliver({"handler": "nobody-home", **FORM})
    deliver({"handler": "save-form", **FORM})

    dry = replay("--dry-run")
    assert dry.count("would replay") == 2
    assert "2 event(s) would be replayed." in dry
    assert HandlerRun.objects.count() == 3  # nothing ran

    flaky["broken"] = False
    out = replay("--handler", "flaky", "--bot", bot.slug)
    assert "failed -> processed (attempt 2)" in out
    assert "Replayed 1 event(s): 1 succeeded." in out
    assert WebhookEvent.objects.get(handler_name="flaky").status == "processed"
    assert WebhookEvent.objects.get(handler_name="nobody-home").runs.count() == 1

    out = replay(
        "--status", "processed", "--since", "2000-01-01", "--until", "2999-12-31"
    )
    assert "Replayed 2 event(s): 2 succeeded." in out
    assert FormSubmission.objects.count() == 3


def test_replay_command_fails_loudly_when_replays_fail(deliver):
    deliver({"handler": "nobody-home", **FORM})
    with pytest.raises(CommandError, match="did not succeed"):
        replay()


def test_replay_command_errors(bot):
    with pytest.raises(CommandError, match="No bot with slug 'nope'"):
        replay("--bot", "nope")
    with pytest.raises(CommandError, match="--since takes a date"):
        replay("--since", "yesterday")
    with pytest.raises(CommandError, match="invalid choice"):
        replay("--status", "rejected")

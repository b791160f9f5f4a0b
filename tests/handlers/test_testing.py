"""The handler authors' test kit: real deliveries through the real endpoint."""

import asyncio
import time

import pytest

from handlers import WebhookHandler, register
from handlers.testing import deliver
from submissions.models import Bot, HandlerRun
from tests.factories import BotFactory


@pytest.mark.django_db
def test_a_bot_is_made_when_none_is_given(handler_registry):
    @register
    class Echo(WebhookHandler):
        name = "kit-echo"

        def handle(self, request, response):
            response.add_text(f"{request.form_values['q']} from {request.user_id}")
            response.set_variable("conversation", request.conversation_id)

    delivered = deliver("kit-echo", {"q": "hi"}, user_id="u-1", conversation_id="c-1")
    assert delivered.status_code == 200
    assert delivered.texts == ["hi from u-1"]
    assert delivered.variables == {"conversation": "c-1"}
    assert delivered.event.bot == Bot.objects.get()
    assert delivered.event.submission.answers.get().value == "hi"
    assert delivered.response["X-Webhook-Event-Id"] == str(delivered.event.pk)


@pytest.mark.django_db
def test_a_given_bot_and_a_whole_payload(handler_registry):
    bot = BotFactory(slug="mine")

    @register
    class Payload(WebhookHandler):
        name = "kit-payload"

        def handle(self, request, response):
            response.add_text(str(request.payload["extra"]))

    delivered = deliver(
        "ignored", bot=bot, payload={"handler": "kit-payload", "extra": 42}
    )
    assert delivered.texts == ["42"]
    assert delivered.event.bot == bot


@pytest.mark.django_db
def test_an_async_handler_and_its_deadline(handler_registry):
    @register
    class Slow(WebhookHandler):
        name = "kit-slow-async"
        deadline_seconds = 0.1
        fallback_text = "Still on it."

        async def handle(self, request, response):
            await asyncio.sleep(5)

    delivered = deliver("kit-slow-async")
    assert delivered.status_code == 200
    assert delivered.texts == ["Still on it."]
    assert delivered.event.runs.get().outcome == HandlerRun.Outcome.TIMED_OUT


@pytest.mark.django_db(transaction=True)
def test_a_def_handler_meets_its_deadline_in_threads(handler_registry):
    @register
    class SlowSync(WebhookHandler):
        name = "kit-slow-def"
        deadline_seconds = 0.1
        fallback_text = "Hold on."

        def handle(self, request, response):
            time.sleep(0.5)

    delivered = deliver("kit-slow-def", threads=True)
    assert delivered.texts == ["Hold on."]
    assert delivered.event.status == "failed"
    # The handler ran on in its thread; its end is recorded on the run.
    run = delivered.event.runs.get()
    for _ in range(100):
        run.refresh_from_db()
        if "late" in run.message:
            break
        time.sleep(0.05)
    assert "finished late" in run.message


@pytest.mark.django_db
def test_errors_and_unknown_handlers_come_back_as_sent(handler_registry):
    @register
    class Broken(WebhookHandler):
        name = "kit-broken"

        def handle(self, request, response):
            raise RuntimeError("boom")

    broken = deliver("kit-broken")
    assert broken.status_code == 500
    assert broken.reply["error"] == "handler_error"
    assert broken.texts == []
    run = broken.event.runs.get()
    assert (run.error_type, run.message) == ("builtins.RuntimeError", "boom")

    unknown = deliver("kit-nobody")
    assert unknown.status_code == 404
    assert unknown.reply["error"] == "unknown_handler"
    assert unknown.event.status == "unrouted"


@pytest.mark.django_db
def test_each_call_is_a_new_delivery_unless_the_id_repeats():
    first = deliver("save-form", {"a": 1}, delivery_id="same")
    copy = deliver("save-form", {"a": 1}, delivery_id="same", bot=first.event.bot)
    other = deliver("save-form", {"a": 1}, bot=first.event.bot)
    assert copy.event.status == "duplicate"
    assert copy.reply == first.reply
    assert other.event.status == "processed"

"""Incidents end to end: real deliveries to the endpoint, the task worker, one alert per window."""

import asyncio
from datetime import timedelta

import pytest
from django.core import mail
from django.db.models import F

from alerts.models import AlertKind, AlertState, SentAlert
from handlers import WebhookHandler, register
from submissions.models import WebhookEvent
from tests.alerts.conftest import (
    OPS_EMAIL,
    queued_task_names,
    time_passes,
    work_off_queue,
)
from tests.factories import BotFactory

# Real commits, as in production: the receiver's on_commit enqueues at once
# and the worker never runs inside a test transaction (as in test_followups).
pytestmark = pytest.mark.django_db(transaction=True)

EXPLODE = {"handler": "explode", "formValues": {"email": "someone@example.org"}}


@pytest.fixture
def exploding(handler_registry):
    @register
    class Exploding(WebhookHandler):
        name = "explode"

        def handle(self, request, response):
            raise RuntimeError("CRM is down for someone@example.org")

    @register
    class AlsoExploding(WebhookHandler):
        name = "explode-too"

        def handle(self, request, response):
            raise KeyError("missing")


def fail(deliver, times=1, payload=EXPLODE):
    for _ in range(times):
        assert deliver(payload).status_code == 500


def test_a_failing_handler_sends_one_email_and_one_webhook_call_per_window(
    deliver, bot, exploding, make_rule, receiver, mailoutbox
):
    make_rule(AlertKind.HANDLER_FAILING, name="Handler failures", webhook=receiver.url)

    fail(deliver, times=5)
    assert mailoutbox == []  # the requests did not send anything
    assert receiver.requests == []

    work_off_queue()

    assert len(mailoutbox) == 1
    assert len(receiver.requests) == 1
    email = mailoutbox[0]
    assert email.to == [OPS_EMAIL]
    assert email.subject == "[webhooks] Handler 'explode' is failing on Demo bot"
    link = (
        "https://hooks.example.com/admin/submissions/webhookevent/"
        f"?bot__id__exact={bot.pk}&handler_name=explode&status__exact=failed"
    )
    assert f"Failed deliveries: {link}" in email.body
    assert "(RuntimeError)" in email.body
    assert "more failures" not in email.body
    assert (
        "someone@example.org" not in email.body
    )  # the exception's text stays in the admin
    assert "at most one alert per 15 minutes" in email.body

    post = receiver.requests[0]
    assert post.headers["Content-Type"] == "application/json"
    assert post.body["text"].startswith(
        "*[webhooks] Handler 'explode' is failing on Demo bot*\n"
    )
    alert = post.body["alert"]
    assert alert["key"] == "handler_failing:demo:explode"
    assert alert["count"] == 1
    assert alert["url"] == link

    state = AlertState.objects.get()
    assert (state.key, state.pending_count) == ("handler_failing:demo:explode", 4)
    sent = SentAlert.objects.order_by("channel")
    assert [(s.channel, s.status, s.attempts) for s in sent] == [
        ("email", "sent", 1),
        ("webhook", "sent", 1),
    ]
    assert sent[1].recipient_shown == receiver.url.split("/services")[0] + "/…"

    # Still inside the window: counted, not sent.
    fail(deliver)
    work_off_queue()
    assert (len(mailoutbox), len(receiver.requests)) == (1, 1)
    state.refresh_from_db()
    assert state.pending_count == 5

    # After the window, the next failure sends, saying how many came since.
    time_passes(timedelta(minutes=16))
    fail(deliver)
    work_off_queue()
    assert (len(mailoutbox), len(receiver.requests)) == (2, 2)
    assert "5 more failures since the last alert at" in mailoutbox[1].body
    second = receiver.requests[1].body["alert"]
    assert (second["count"], second["held_back"]) == (6, 5)
    assert SentAlert.objects.filter(incident_count=6).count() == 2


def test_each_handler_and_each_bot_has_its_own_window(
    deliver, bot, exploding, make_rule, mailoutbox
):
    other = BotFactory(slug="other", name="Other bot")
    make_rule(AlertKind.HANDLER_FAILING)

    fail(deliver, times=2)
    fail(deliver, times=2, payload={"handler": "explode-too"})
    assert deliver(EXPLODE, to=other).status_code == 500
    work_off_queue()

    assert sorted(m.subject for m in mailoutbox) == [
        "[webhooks] Handler 'explode' is failing on Demo bot",
        "[webhooks] Handler 'explode' is failing on Other bot",
        "[webhooks] Handler 'explode-too' is failing on Demo bot",
    ]
    assert "(KeyError)" in next(m.body for m in mailoutbox if "explode-too" in m.body)


def test_a_rule_only_watches_its_bot_and_handler(
    deliver, bot, exploding, make_rule, mailoutbox
):
    other = BotFactory(slug="other", name="Other bot")
    make_rule(AlertKind.HANDLER_FAILING, handler_name="explode-too")
    make_rule(AlertKind.HANDLER_FAILING, bot=other)
    make_rule(AlertKind.HANDLER_FAILING, enabled=False)
    make_rule(AlertKind.UNKNOWN_HANDLER)

    fail(deliver, times=3)

    assert queued_task_names() == []  # no rule watches it: nothing even queued
    work_off_queue()
    assert mailoutbox == []


def test_nothing_is_sent_from_the_request_path(deliver, exploding, make_rule):
    make_rule(AlertKind.HANDLER_FAILING)

    fail(deliver)

    assert mail.outbox == []
    assert queued_task_names() == ["alerts.incidents.alert_incident"]
    work_off_queue()
    assert len(mail.outbox) == 1


def test_a_delivery_for_an_unknown_handler_alerts(deliver, bot, make_rule, mailoutbox):
    make_rule(AlertKind.UNKNOWN_HANDLER)

    for _ in range(3):
        assert deliver({"handler": "save-from"}).status_code == 404
    work_off_queue()

    (email,) = mailoutbox
    assert email.subject == (
        "[webhooks] Deliveries for an unknown handler 'save-from' on Demo bot"
    )
    assert "no handler is registered under that name. Did you mean 'save-form'?" in (
        email.body
    )
    assert (
        "Unrouted deliveries: https://hooks.example.com/admin/submissions/webhookevent/"
        f"?bot__id__exact={bot.pk}&handler_name=save-from&status__exact=unrouted"
    ) in email.body


def test_a_dead_follow_up_alerts(deliver, bot, handler_registry, make_rule, mailoutbox):
    @register
    class CRMPush(WebhookHandler):
        name = "crm-push"

        def handle(self, request, response):
            response.add_text("Thanks.")

        def follow_up(self, request):
            raise ValueError("CRM refused the lead")

    make_rule(AlertKind.FOLLOW_UP_DEAD)
    assert deliver({"handler": "crm-push"}).status_code == 200
    event = WebhookEvent.objects.get()

    work_off_queue()  # the follow-up dies; its alert is queued and sent

    (email,) = mailoutbox
    assert email.subject == (
        "[webhooks] Follow-up work of 'crm-push' failed for good on Demo bot"
    )
    assert f"for event #{event.pk} on bot Demo bot (demo)" in email.body
    assert "(ValueError)" in email.body
    assert "CRM refused" not in email.body
    assert (
        "Dead follow-ups: https://hooks.example.com/admin/submissions/handlerrun/"
        "?handler_name=crm-push&outcome__exact=dead"
    ) in email.body


def rejected(deliver, times):
    for _ in range(times):
        response = deliver(
            {"handler": "save-form"}, secret="an-old-secret-from-before-the-rotation"
        )
        assert response.status_code == 401


def test_ten_rejected_tokens_within_five_minutes_send_one_alert(
    deliver, bot, make_rule, receiver, mailoutbox
):
    make_rule(AlertKind.REJECTED_TOKENS, webhook=receiver.url)

    rejected(deliver, 12)
    work_off_queue()

    (email,) = mailoutbox
    assert email.subject == (
        "[webhooks] 10 deliveries to Demo bot rejected for their token in 5 minutes"
    )
    assert "invalid_signature (10)" in email.body
    assert "usually means a secret mismatch after a rotation" in email.body
    assert (
        "Rejected deliveries: https://hooks.example.com/admin/submissions/"
        f"webhookevent/?bot__id__exact={bot.pk}&status__exact=rejected"
    ) in email.body
    assert bot.secret not in email.body
    (post,) = receiver.requests
    assert post.body["alert"]["token_errors"] == {"invalid_signature": 10}
    assert AlertState.objects.get().pending_count == 2  # the 11th and 12th


def test_nine_rejected_tokens_send_nothing(deliver, make_rule, mailoutbox):
    make_rule(AlertKind.REJECTED_TOKENS)

    rejected(deliver, 9)
    work_off_queue()

    assert mailoutbox == []
    assert not SentAlert.objects.exists()


def test_ten_rejected_tokens_over_more_than_five_minutes_send_nothing(
    deliver, make_rule, mailoutbox
):
    make_rule(AlertKind.REJECTED_TOKENS)

    rejected(deliver, 5)
    WebhookEvent.objects.update(received_at=F("received_at") - timedelta(minutes=6))
    rejected(deliver, 5)
    work_off_queue()

    assert mailoutbox == []


def test_a_rule_can_set_its_own_threshold(deliver, exploding, make_rule, mailoutbox):
    make_rule(AlertKind.HANDLER_FAILING, threshold=3)

    fail(deliver, times=2)
    work_off_queue()
    assert mailoutbox == []

    fail(deliver)
    work_off_queue()
    assert len(mailoutbox) == 1


def test_new_submissions_of_a_chosen_form(
    deliver, bot, make_rule, receiver, mailoutbox
):
    make_rule(AlertKind.NEW_SUBMISSION, handler_name="save-form", webhook=receiver.url)
    form = {"handler": "save-form", "formValues": {"phone": "+44 7700 900123"}}

    for _ in range(3):
        assert deliver(form).status_code == 200
    division = {"handler": "division-handler", "formValues": {"dividend": 1}}
    assert deliver(division).status_code == 200
    work_off_queue()

    (email,) = mailoutbox
    assert email.subject == "[webhooks] New submission of 'save-form' on Demo bot"
    assert "A new submission of the form 'save-form' reached bot Demo bot" in email.body
    assert (
        "Submissions: https://hooks.example.com/admin/submissions/formsubmission/"
        f"?bot__id__exact={bot.pk}&handler_name=save-form"
    ) in email.body
    (post,) = receiver.requests
    for text in (email.body, str(post.body)):
        assert "7700" not in text  # never an answer's value
        assert "phone" not in text

    time_passes(timedelta(minutes=15))
    assert deliver(form).status_code == 200
    work_off_queue()
    assert "2 more submissions since the last alert" in mailoutbox[1].body


def test_a_handler_past_its_deadline_alerts_as_failing(
    deliver, bot, handler_registry, make_rule, mailoutbox
):
    @register
    class Slow(WebhookHandler):
        name = "slow"
        deadline_seconds = 0.05

        async def handle(self, request, response):
            await asyncio.sleep(5)

    make_rule(AlertKind.HANDLER_FAILING, name="Handler failures")
    response = deliver({"handler": "slow"})
    assert response.status_code == 200  # the fallback reply
    assert WebhookEvent.objects.get().error_code == "handler_timeout"

    work_off_queue()

    assert len(mailoutbox) == 1
    assert mailoutbox[0].subject == "[webhooks] Handler 'slow' is failing on Demo bot"

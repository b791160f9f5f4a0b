"""The overview: per-day aggregates against hand-counted fixtures, and what needs attention."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from submissions.models import HandlerRun, WebhookEvent
from tests.factories import BotFactory, WebhookEventFactory, submission_with_answers

pytestmark = pytest.mark.django_db

OVERVIEW = reverse("admin:overview")


@pytest.fixture
def history(bot, settings):
    settings.TIME_ZONE = "UTC"
    now = timezone.now()
    other = BotFactory(slug="other", name="Other")
    for days, handler in [
        (0, "contact"),
        (0, "contact"),
        (1, "contact"),
        (2, "survey"),
    ]:
        submission = submission_with_answers(
            {"a": 1},
            bot=bot,
            handler_name=handler,
            submitted_at=now - timedelta(days=days),
        )
        WebhookEvent.objects.filter(pk=submission.event_id).update(
            bot=bot, received_at=now - timedelta(days=days), status="processed"
        )
    old = submission_with_answers(
        {"a": 1}, bot=bot, handler_name="contact", submitted_at=now - timedelta(days=45)
    )  # outside the 30 days, with its event
    WebhookEvent.objects.filter(pk=old.event_id).update(
        received_at=now - timedelta(days=45)
    )
    for _ in range(3):
        WebhookEventFactory(
            bot=other,
            status="rejected",
            error_code="invalid_signature",
            received_at=now,
        )
    WebhookEventFactory(
        bot=bot,
        status="unrouted",
        handler_name="old-survey",
        received_at=now - timedelta(days=3),
    )
    WebhookEventFactory(
        bot=bot, status="unrouted", handler_name="old-survey", received_at=now
    )
    failed = WebhookEventFactory(
        bot=bot, status="failed", handler_name="crm", received_at=now
    )
    for attempt, (outcome, message) in enumerate(
        [("failed", "RuntimeError: CRM down"), ("dead", "Follow-up try 5 of 5: 503")],
        start=1,
    ):
        HandlerRun.objects.create(
            event=failed,
            attempt=attempt,
            handler_name="crm",
            started_at=now - timedelta(minutes=10 - attempt),
            finished_at=now,
            duration_ms=1,
            outcome=outcome,
            message=message,
        )
    return now


def test_per_day_counts_match_the_hand_count(admin_client, bot, history):
    response = admin_client.get(OVERVIEW)
    context = response.context

    days = context["days"]
    assert len(days) == 30
    assert days[-1] == timezone.localdate(history)
    forms = {label: counts for label, _, counts in context["form_rows"]}
    assert forms[f"{bot.name} / contact"][-1] == 2  # today
    assert forms[f"{bot.name} / contact"][-2] == 1
    assert forms[f"{bot.name} / survey"][-3] == 1
    assert sum(forms[f"{bot.name} / contact"]) == 3  # not the one 45 days ago
    statuses = {label: counts for label, _, counts in context["status_rows"]}
    assert statuses["Rejected"][-1] == 3
    assert statuses["Processed"][-1] == 2
    assert statuses["Unrouted"][-1] == 1
    assert statuses["Unrouted"][-4] == 1
    assert statuses["Failed"][-1] == 1
    page = response.content.decode()
    assert "<svg" in page
    assert '<table class="chart-numbers">' in page  # the numbers without JavaScript
    assert "<script" not in page.split('id="content-main"')[1]


def test_needs_attention(admin_client, bot, history):
    context = admin_client.get(OVERVIEW).context

    (unrouted,) = context["unrouted"]
    assert (unrouted["handler_name"], unrouted["n"]) == ("old-survey", 2)
    assert "status__exact=unrouted" in unrouted["url"]
    (failing,) = context["failing"]
    assert (failing["handler_name"], failing["n"]) == ("crm", 1)
    assert failing["message"] == "RuntimeError: CRM down"
    (dead,) = context["dead_follow_ups"]
    assert (dead["handler_name"], dead["n"]) == ("crm", 1)
    assert "outcome__exact=dead" in dead["url"]
    (rejected,) = context["rejected_tokens"]
    assert (rejected["bot__name"], rejected["n"]) == ("Other", 3)
    page = admin_client.get(rejected["url"])
    assert page.status_code == 200


def test_the_overview_reads_a_constant_number_of_queries(admin_client, bot, history):
    with CaptureQueriesContext(connection) as few:
        admin_client.get(OVERVIEW)
    for n in range(5):
        submission_with_answers({"a": n}, bot=BotFactory(), handler_name=f"f-{n}")
        WebhookEventFactory(bot=bot, status="unrouted", handler_name=f"gone-{n}")
    with CaptureQueriesContext(connection) as more:
        admin_client.get(OVERVIEW)
    assert len(more) == len(few)


def test_the_overview_is_linked_first_on_the_admin_home(admin_client):
    page = admin_client.get(reverse("admin:index")).content.decode()
    assert page.index(OVERVIEW) < page.index(reverse("admin:forms"))

"""Replay jobs in the admin: a confirmation with the count, a job list with progress."""

import pytest
from django.urls import reverse
from django_tasks_db.models import DBTaskResult

from handlers import WebhookHandler, register
from submissions.models import ReplayJob, WebhookEvent
from submissions.replay_jobs import INLINE_LIMIT, replay_job_execute
from tests.factories import ReplayJobFactory, WebhookEventFactory
from tests.submissions.admin.test_replay import staff

pytestmark = pytest.mark.django_db

EVENTS_URL = reverse("admin:submissions_webhookevent_changelist")
JOBS_URL = reverse("admin:submissions_replayjob_changelist")


@pytest.fixture
def fixed(handler_registry):
    @register
    class Fragile(WebhookHandler):
        name = "fragile"

        def handle(self, request, response):
            response.add_text("fixed")


def many_failed(bot) -> list[WebhookEvent]:
    return WebhookEventFactory.create_batch(
        INLINE_LIMIT + 1, bot=bot, status="failed", handler_name="fragile"
    )


def replay_all(client, query: str, **extra):
    first = WebhookEvent.objects.order_by("pk").first()
    return client.post(
        f"{EVENTS_URL}?{query}",
        {
            "action": "replay_selected",
            "select_across": "1",
            "_selected_action": [first.pk],
            **extra,
        },
    )


def test_many_events_are_confirmed_then_queued_as_a_job(
    client, fixed, bot, django_capture_on_commit_callbacks
):
    events = many_failed(bot)
    WebhookEventFactory(bot=bot, status="processed", handler_name="fragile")
    user = staff("replay_webhookevent")
    client.force_login(user)

    page = replay_all(client, f"status__exact=failed&bot__id__exact={bot.pk}")
    text = page.content.decode()
    assert page.status_code == 200
    assert f"<strong>{INLINE_LIMIT + 1}</strong> event(s)" in text
    assert "status failed, bot demo" in text
    assert not ReplayJob.objects.exists()  # nothing until confirmed

    with django_capture_on_commit_callbacks(execute=True):
        done = replay_all(
            client, f"status__exact=failed&bot__id__exact={bot.pk}", confirm="yes"
        )
    assert done.status_code == 302
    assert done.url == JOBS_URL
    job = ReplayJob.objects.get()
    assert (job.estimate, job.status, job.created_by, job.source) == (
        INLINE_LIMIT + 1,
        "queued",
        user,
        "admin",
    )
    assert job.filter == {"statuses": ["failed"], "bot_id": bot.pk}
    assert DBTaskResult.objects.filter(args_kwargs__kwargs={"job_id": job.pk}).exists()

    assert replay_job_execute(job_id=job.pk).done == len(events)
    listing = client.get(JOBS_URL).content.decode()
    assert "<progress" in listing
    assert f"{len(events)} of {len(events)} (100%)" in listing
    detail = client.get(reverse("admin:submissions_replayjob_change", args=[job.pk]))
    assert "status failed, bot demo" in detail.content.decode()


def test_a_search_of_many_is_not_made_a_job(client, fixed, bot):
    many_failed(bot)
    client.force_login(staff("replay_webhookevent"))

    response = client.post(
        f"{EVENTS_URL}?q=fragile",
        {
            "action": "replay_selected",
            "select_across": "1",
            "_selected_action": [WebhookEvent.objects.first().pk],
        },
        follow=True,
    )
    assert "not a search" in response.content.decode()
    assert not ReplayJob.objects.exists()


def test_jobs_are_cancelled_from_their_list(client):
    running = ReplayJobFactory(status="running")
    finished = ReplayJobFactory(status="finished")
    client.force_login(staff("replay_webhookevent"))

    response = client.post(
        JOBS_URL,
        {"action": "cancel_jobs", "_selected_action": [running.pk, finished.pk]},
        follow=True,
    )
    assert "Cancelled 1 job(s)" in response.content.decode()
    running.refresh_from_db()
    finished.refresh_from_db()
    assert (running.status, finished.status) == ("cancelled", "finished")


def test_cancelling_needs_the_replay_permission(client):
    job = ReplayJobFactory(status="running")
    client.force_login(staff("view_replayjob"))
    page = client.get(JOBS_URL)
    assert page.status_code == 200
    assert "cancel_jobs" not in page.content.decode()
    client.post(JOBS_URL, {"action": "cancel_jobs", "_selected_action": [job.pk]})
    job.refresh_from_db()
    assert job.status == "running"

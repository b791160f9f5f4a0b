"""Replay jobs: the estimate is what runs, batches record progress, cancel stops."""

import pytest
from django.core.management import call_command
from django_tasks_db.models import DBTaskResult

from handlers import WebhookHandler, register
from submissions.models import HandlerRun, ReplayJob, WebhookEvent
from submissions.replay_jobs import (
    replay_job_cancel,
    replay_job_create,
    replay_job_execute,
)
from submissions.selectors.events import ReplayFilter, replay_estimate
from tests.factories import WebhookEventFactory

pytestmark = pytest.mark.django_db

FAILED = ReplayFilter(statuses=[WebhookEvent.Status.FAILED])


@pytest.fixture
def seen(handler_registry):
    """A handler that notes how far the job had got each time it runs."""
    calls: list[int] = []
    hooks: list = []

    @register
    class Watched(WebhookHandler):
        name = "watched"

        def handle(self, request, response):
            calls.append(ReplayJob.objects.get().done)
            for hook in hooks:
                hook(len(calls))
            response.add_text("ok")

    return calls, hooks


def failed_events(n: int, **kwargs) -> list[WebhookEvent]:
    return WebhookEventFactory.create_batch(
        n, status=WebhookEvent.Status.FAILED, handler_name="watched", **kwargs
    )


def test_the_estimate_is_what_the_job_replays_batch_by_batch(seen, bot):
    calls, _ = seen
    events = failed_events(7, bot=bot)
    WebhookEventFactory(status=WebhookEvent.Status.PROCESSED, handler_name="watched")
    assert replay_estimate(selected=FAILED) == (7, events[-1].pk)

    job = replay_job_create(selected=FAILED, created_by=None, source="command")
    failed_events(2, bot=bot)  # after the estimate: neither counted nor run
    job = replay_job_execute(job_id=job.pk, batch_size=3)

    assert (job.estimate, job.done, job.succeeded, job.failed) == (7, 7, 7, 0)
    assert job.status == ReplayJob.Status.FINISHED
    assert job.started_at <= job.finished_at
    assert job.last_event_id == events[-1].pk
    # Progress written after each batch of 3, read by the next batch's runs.
    assert calls == [0, 0, 0, 3, 3, 3, 6]
    replayed = HandlerRun.objects.filter(trigger=HandlerRun.Trigger.REPLAY)
    assert sorted(replayed.values_list("event_id", flat=True)) == [e.pk for e in events]


def test_the_filter_round_trips_as_json(bot):
    selected = ReplayFilter(
        statuses=["failed", "unrouted"],
        bot_id=bot.pk,
        handler_name="watched",
        since=WebhookEventFactory.build().received_at,
        event_ids=[3, 4],
    )
    assert ReplayFilter.from_json(selected.as_json()) == selected
    assert "bot demo" in selected.describe()
    assert "2 chosen event(s)" in selected.describe()


def test_cancel_stops_the_job_between_batches(seen, bot):
    calls, hooks = seen
    failed_events(7, bot=bot)
    job = replay_job_create(selected=FAILED, created_by=None, source="admin")
    hooks.append(lambda n: n == 2 and replay_job_cancel(job_id=job.pk))

    job = replay_job_execute(job_id=job.pk, batch_size=3)

    assert job.status == ReplayJob.Status.CANCELLED
    assert job.done == 3  # the batch under way ended; no other began
    assert calls == [0, 0, 0]
    assert replay_job_cancel(job_id=job.pk) is False


def test_a_cancelled_job_never_starts(seen, bot):
    failed_events(2, bot=bot)
    job = replay_job_create(selected=FAILED, created_by=None, source="admin")
    assert replay_job_cancel(job_id=job.pk) is True

    assert replay_job_execute(job_id=job.pk).done == 0
    assert seen[0] == []


@pytest.mark.django_db(transaction=True)
def test_the_worker_runs_a_queued_job(seen, bot):
    failed_events(3, bot=bot)
    job = replay_job_create(selected=FAILED, created_by=None, source="command")
    assert DBTaskResult.objects.filter(task_path__endswith="replay_job_run").exists()

    call_command(
        "db_worker", "--batch", "--no-startup-delay", "--no-reload", verbosity=0
    )

    job.refresh_from_db()
    assert (job.status, job.done, job.succeeded) == ("finished", 3, 3)
    assert WebhookEvent.objects.filter(status="processed").count() == 3

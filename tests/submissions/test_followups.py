"""Follow-up work: queued after the reply, retried with backoff, dead at the last try."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from handlers import TransientError, WebhookHandler, register
from submissions.followups import retry_delay_seconds
from submissions.models import HandlerRun, WebhookEvent
from submissions.replay import webhook_event_replay

# Real commits, as in production: on_commit enqueues at once and the worker
# (which closes obsolete connections) never runs inside a test transaction.
pytestmark = pytest.mark.django_db(transaction=True)

FORM = {"handler": "crm-push", "formValues": {"email": "a@b.c"}}


class FakeCRM:
    """The outside world a handler talks to: the only thing these tests fake."""

    def __init__(self):
        self.received: list[str] = []
        self.failures: list[Exception] = []

    def push(self, email: str) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.received.append(email)


@pytest.fixture
def crm(handler_registry):
    crm = FakeCRM()

    @register
    class CRMPush(WebhookHandler):
        name = "crm-push"
        follow_up_max_attempts = 3

        def handle(self, request, response):
            response.add_text("Thanks, we'll be in touch.")

        def follow_up(self, request):
            crm.push(request.form_values["email"])

    return crm


def work_off_queue() -> None:
    """Run every task that is due, as `manage.py db_worker` does."""
    call_command(
        "db_worker", "--batch", "--no-startup-delay", "--no-reload", verbosity=0
    )


def make_due() -> None:
    DBTaskResult.objects.filter(status="READY").update(run_after=timezone.now())


def deliver_and_commit(deliver, payload=FORM):
    response = deliver(payload)
    assert response.status_code == 200
    return WebhookEvent.objects.get()


def test_follow_up_runs_in_the_worker_after_the_reply(deliver, crm):
    event = deliver_and_commit(deliver)
    assert crm.received == []  # the reply did not wait for the CRM
    assert DBTaskResult.objects.filter(status="READY").count() == 1

    work_off_queue()

    assert crm.received == ["a@b.c"]
    runs = list(event.runs.values_list("attempt", "trigger", "outcome"))
    assert runs == [(1, "delivery", "succeeded"), (2, "follow_up", "succeeded")]
    assert DBTaskResult.objects.get().status == "SUCCESSFUL"


def test_handlers_without_follow_up_enqueue_nothing(deliver):
    deliver_and_commit(deliver, {"handler": "save-form", "formValues": {"a": 1}})
    assert not DBTaskResult.objects.exists()


def test_transient_errors_are_retried_with_backoff(deliver, crm, settings):
    settings.WEBHOOKS = {"FOLLOW_UP_RETRY_SECONDS": 60}
    crm.failures = [TransientError("CRM answered 503")]
    event = deliver_and_commit(deliver)

    work_off_queue()

    retry = DBTaskResult.objects.get(status="READY")
    delay = (retry.run_after - timezone.now()).total_seconds()
    assert 50 < delay <= 60
    assert retry.args_kwargs["kwargs"] == {"event_id": event.pk, "try_number": 2}
    work_off_queue()
    assert crm.received == []  # not due yet

    make_due()
    work_off_queue()
    assert crm.received == ["a@b.c"]
    outcomes = list(event.runs.values_list("outcome", flat=True))
    assert outcomes == ["succeeded", "retrying", "succeeded"]
    event.refresh_from_db()
    assert event.status == "processed"


def test_a_follow_up_that_keeps_failing_lands_in_the_dead_letters_and_replays(
    deliver, crm
):
    crm.failures = [TransientError("timeout")] * 3
    event = deliver_and_commit(deliver)
    for _ in range(3):
        make_due()
        work_off_queue()

    dead = HandlerRun.objects.get(outcome=HandlerRun.Outcome.DEAD)
    assert dead.message == "Follow-up try 3 of 3: timeout"
    assert dead.error_type == "handlers.exceptions.TransientError"
    event.refresh_from_db()
    assert (event.status, event.error_code) == ("failed", "follow_up_failed")
    assert not DBTaskResult.objects.filter(status="READY").exists()  # no fourth try

    webhook_event_replay(event=event)
    work_off_queue()
    assert crm.received == ["a@b.c"]


def test_other_errors_are_permanent_at_once(deliver, crm):
    crm.failures = [ValueError("CRM refused the email")]
    event = deliver_and_commit(deliver)
    work_off_queue()
    assert list(event.runs.values_list("outcome", flat=True)) == ["succeeded", "dead"]
    assert not DBTaskResult.objects.filter(status="READY").exists()


def test_backoff_doubles_and_is_capped(settings):
    settings.WEBHOOKS = {
        "FOLLOW_UP_RETRY_SECONDS": 30,
        "FOLLOW_UP_RETRY_MAX_SECONDS": 200,
    }
    assert [retry_delay_seconds(n) for n in range(1, 6)] == [30, 60, 120, 200, 200]
    assert timedelta(seconds=retry_delay_seconds(1)) == timedelta(seconds=30)

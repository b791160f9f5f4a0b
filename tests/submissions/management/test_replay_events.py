"""replay_events: an estimate, a confirmation, a job followed, cancelled, failing loudly."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from handlers import WebhookHandler, register
from submissions.models import FormSubmission, HandlerRun, ReplayJob, WebhookEvent

# Real commits: the job is queued once its transaction commits, and the
# immediate task backend then runs it at once, as a worker would.
pytestmark = pytest.mark.django_db(transaction=True)

IMMEDIATE = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}

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


def test_replay_command_estimates_then_runs_a_job(deliver, flaky, bot, settings):
    settings.TASKS = IMMEDIATE
    deliver({"handler": "flaky", **FORM})
    deliver({"handler": "nobody-home", **FORM})
    deliver({"handler": "save-form", **FORM})

    dry = replay("--dry-run")
    assert dry.startswith("2 event(s) selected: status failed or unrouted.")
    assert dry.count("would replay") == 2
    assert "2 event(s) would be replayed." in dry
    assert HandlerRun.objects.count() == 3  # nothing ran
    assert not ReplayJob.objects.exists()

    flaky["broken"] = False
    out = replay("--handler", "flaky", "--bot", bot.slug, "--yes", "--wait")
    assert (
        "1 event(s) selected: status failed or unrouted, bot demo, handler flaky."
        in out
    )
    job = ReplayJob.objects.get()
    assert f"Queued replay job #{job.pk} (1 event(s))" in out
    assert f"Replay job #{job.pk} finished: 1 of 1 (100%), 1 succeeded, 0 failed" in out
    assert "Replayed 1 event(s)." in out
    assert WebhookEvent.objects.get(handler_name="flaky").status == "processed"
    assert WebhookEvent.objects.get(handler_name="nobody-home").runs.count() == 1

    out = replay(
        "--status",
        "processed",
        "--since",
        "2000-01-01",
        "--until",
        "2999-12-31",
        "--yes",
        "--wait",
    )
    assert "2 of 2 (100%), 2 succeeded" in out
    assert FormSubmission.objects.count() == 3
    assert replay("--job-status", str(job.pk)).startswith(
        f"Replay job #{job.pk} finished"
    )


def test_replay_command_fails_loudly_when_replays_fail(deliver, settings):
    settings.TASKS = IMMEDIATE
    deliver({"handler": "nobody-home", **FORM})
    with pytest.raises(CommandError, match="did not succeed"):
        replay("--yes", "--wait")
    assert ReplayJob.objects.get().failed == 1


def test_here_runs_the_job_in_this_process_with_no_worker(deliver, flaky):
    deliver({"handler": "flaky", "id": "h-2", **FORM})  # failed: the CRM is down
    flaky["broken"] = False

    out = replay("--yes", "--here", "--status", "failed")  # the database backend

    job = ReplayJob.objects.get()
    assert (job.status, job.estimate, job.done, job.succeeded) == ("finished", 1, 1, 1)
    assert f"Running replay job #{job.pk} (1 event(s)) here." in out
    assert "Replayed 1 event(s)." in out
    assert WebhookEvent.objects.get(delivery_id="h-2").status == "processed"
    from django_tasks_db.models import DBTaskResult

    assert not DBTaskResult.objects.exists()  # nothing queued for a worker


def test_a_queued_job_is_followed_and_cancelled(deliver):
    deliver({"handler": "nobody-home", **FORM})  # the database backend: no worker here

    out = replay("--yes")
    job = ReplayJob.objects.get()
    assert job.status == "queued"
    assert replay("--job-status", str(job.pk)) == (
        f"Replay job #{job.pk} queued: 0 of 1 (0%), 0 succeeded, 0 failed\n"
    )
    assert f"--cancel {job.pk}" in out

    assert replay("--cancel", str(job.pk)) == f"Replay job #{job.pk} cancelled.\n"
    with pytest.raises(CommandError, match="had already cancelled"):
        replay("--cancel", str(job.pk))
    call_command(
        "db_worker", "--batch", "--no-startup-delay", "--no-reload", verbosity=0
    )
    assert HandlerRun.objects.count() == 1  # the cancelled job replayed nothing


@pytest.mark.parametrize("here", [True, False])
def test_a_job_left_running_by_a_dead_worker_is_resumed_after_its_last_batch(
    deliver, flaky, settings, here
):
    for n in range(3):
        deliver({"handler": "flaky", "id": f"r-{n}", **FORM})  # failed
    flaky["broken"] = False
    replay("--yes", "--status", "failed")  # queued (the database backend, no worker)
    job = ReplayJob.objects.get()
    first = WebhookEvent.objects.order_by("pk").first()
    # As a worker killed after its first batch of one leaves it.
    ReplayJob.objects.filter(pk=job.pk).update(
        status="running", done=1, succeeded=1, last_event_id=first.pk
    )
    runs_before = HandlerRun.objects.count()
    settings.TASKS = IMMEDIATE  # a worker that runs what is queued at once

    out = replay("--resume", str(job.pk), *(["--here"] if here else []))

    job.refresh_from_db()
    assert (job.status, job.done, job.succeeded) == ("finished", 3, 3)
    assert HandlerRun.objects.count() == runs_before + 2  # the first not run again
    assert not HandlerRun.objects.filter(event=first, attempt=2).exists()
    assert ("Resuming replay job" in out) is here
    with pytest.raises(CommandError, match="had already finished: nothing to resume"):
        replay("--resume", str(job.pk))


def test_replay_command_errors(bot, deliver):
    with pytest.raises(CommandError, match="No bot with slug 'nope'"):
        replay("--bot", "nope")
    with pytest.raises(CommandError, match="--since takes a date"):
        replay("--since", "yesterday")
    with pytest.raises(CommandError, match="invalid choice"):
        replay("--status", "rejected")
    with pytest.raises(CommandError, match="No replay job #99"):
        replay("--job-status", "99")
    assert replay().endswith("Nothing to replay.\n")
    deliver({"handler": "nobody-home", **FORM})
    with pytest.raises(CommandError, match="Add --yes"):
        replay()  # no terminal to ask on
    assert not ReplayJob.objects.exists()

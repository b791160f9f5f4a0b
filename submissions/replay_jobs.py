"""Bulk replays as background jobs: an estimate, then batches, with progress.

``replay_job_create`` counts what a ``ReplayFilter`` selects (the estimate),
records a ``ReplayJob`` and queues ``replay_job_run`` (a django-tasks task,
run by ``manage.py db_worker``) once the transaction commits. The task
replays the events in batches by id, ``BATCH_SIZE`` at a time, each with
``webhook_event_replay``: every replay commits its own run, and the job's
progress is written after each batch, so no transaction is held across
batches (nor across a batch). Between batches it reads the job's status:
``replay_job_cancel`` stops it there.

Only events up to the highest id the estimate counted are replayed, so one
that arrives meanwhile is neither counted nor run. A job whose worker died
is queued again with ``replay_job_resume``: it goes on after the last
batch it recorded (that batch's replays, if cut short, may run twice).
"""

from __future__ import annotations

import logging

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django_tasks import task

from submissions.models import HandlerRun, ReplayJob
from submissions.replay import webhook_events_replay
from submissions.selectors.events import ReplayFilter, replay_estimate

logger = logging.getLogger("submissions.replay_jobs")

#: Events replayed between two looks at the job's status (and progress writes).
BATCH_SIZE = 200
#: The admin replays at most this many selected rows at once, in the request;
#: more become a job.
INLINE_LIMIT = 50

OPEN = [ReplayJob.Status.QUEUED, ReplayJob.Status.RUNNING]


def replay_job_create(
    *,
    selected: ReplayFilter,
    created_by: AbstractBaseUser | None,
    source: str,
    counted: tuple[int, int] | None = None,
    queue: bool = True,
) -> ReplayJob:
    """Record a job for what ``selected`` picks now and queue it after the commit.

    ``counted`` is the ``replay_estimate`` the user confirmed, if any: the job
    replays no event above the highest id it counted. With ``queue=False``
    the caller runs it itself (``replay_job_execute``; no task worker needed).
    """
    estimate, max_event_id = counted or replay_estimate(selected=selected)
    job = ReplayJob.objects.create(
        filter=selected.as_json(),
        estimate=estimate,
        max_event_id=max_event_id,
        created_by=created_by,
        source=source,
    )
    if queue:
        replay_job_resume(job=job)
    return job


def replay_job_resume(*, job: ReplayJob) -> None:
    """Queue ``job``'s task once the current transaction commits."""
    transaction.on_commit(lambda: replay_job_run.enqueue(job_id=job.pk))


def replay_job_cancel(*, job_id: int) -> bool:
    """Stop a queued or running job before its next batch; False if it had ended."""
    return bool(
        ReplayJob.objects.filter(pk=job_id, status__in=OPEN).update(
            status=ReplayJob.Status.CANCELLED, finished_at=timezone.now()
        )
    )


def replay_job_execute(*, job_id: int, batch_size: int = BATCH_SIZE) -> ReplayJob:
    """Replay ``job_id``'s events batch by batch until done or cancelled."""
    jobs = ReplayJob.objects.filter(pk=job_id)
    jobs.filter(status=ReplayJob.Status.QUEUED).update(
        status=ReplayJob.Status.RUNNING, started_at=timezone.now()
    )
    job = jobs.get()
    selected = ReplayFilter.from_json(job.filter)
    last = job.last_event_id
    try:
        while jobs.filter(status=ReplayJob.Status.RUNNING).exists():
            batch = list(
                selected.events()
                .filter(pk__gt=last, pk__lte=job.max_event_id)
                .select_related("bot")
                .order_by("pk")[:batch_size]
            )
            if not batch:
                jobs.filter(status=ReplayJob.Status.RUNNING).update(
                    status=ReplayJob.Status.FINISHED, finished_at=timezone.now()
                )
                break
            succeeded = failed = 0
            for _, run in webhook_events_replay(events=batch):
                if run.outcome == HandlerRun.Outcome.SUCCEEDED:
                    succeeded += 1
                else:
                    failed += 1
            last = batch[-1].pk
            jobs.update(
                done=F("done") + succeeded + failed,
                succeeded=F("succeeded") + succeeded,
                failed=F("failed") + failed,
                last_event_id=last,
            )
    except Exception as exc:
        jobs.filter(status__in=OPEN).update(
            status=ReplayJob.Status.FINISHED,
            finished_at=timezone.now(),
            error=f"{type(exc).__name__}: {exc}",
        )
        logger.exception("replay job %s stopped", job_id, extra={"job_id": job_id})
        raise
    return jobs.get()


@task()
def replay_job_run(job_id: int) -> str:
    """The worker's side of a replay job."""
    job = replay_job_execute(job_id=job_id)
    return f"{job.done} of {job.estimate} replayed, {job.failed} failed, {job.status}"

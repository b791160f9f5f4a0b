"""Retention on a schedule: each form's policy applied daily by the task worker.

``retention_apply_daily`` (a django-tasks task) applies every
``RetentionPolicy`` (``services.retention_apply``) and queues its own next
run a day later, so one ``purge_events --policies --daily`` (or the admin
saving a policy) starts a schedule that keeps itself going as long as a
worker runs (``manage.py db_worker``). ``retention_schedule_daily`` queues a
run unless one is already waiting, so calling it again never doubles it.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.utils import timezone
from django_tasks import task

from submissions.scheduling import task_waiting
from submissions.services.retention import retention_apply

logger = logging.getLogger("submissions.retention")

DAY = timedelta(days=1)


def _waiting() -> bool:
    return task_waiting(retention_apply_daily)


def retention_schedule_daily(*, first_run_in: timedelta = timedelta(0)) -> bool:
    """Queue the daily retention run unless one is waiting; True if queued.

    A task backend that cannot run a task later (django-tasks' immediate one)
    cannot hold a schedule: then nothing is queued, and purge_events
    --policies belongs in cron instead.
    """
    if not retention_apply_daily.get_backend().supports_defer or _waiting():
        return False
    retention_apply_daily.using(run_after=timezone.now() + first_run_in).enqueue()
    return True


@task()
def retention_apply_daily() -> str:
    """Apply the retention policies, then queue the next run a day later."""
    try:
        results = retention_apply()
    finally:
        if retention_apply_daily.get_backend().supports_defer:
            retention_apply_daily.using(run_after=timezone.now() + DAY).enqueue()
    deleted = sum(r.submissions for r in results), sum(r.events for r in results)
    logger.info(
        "retention: %s submission(s) and %s event(s) deleted under %s policies",
        *deleted,
        len(results),
    )
    return f"{deleted[0]} submissions, {deleted[1]} events deleted"

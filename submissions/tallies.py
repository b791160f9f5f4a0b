"""Tallies on a schedule: counted every few minutes by the task worker.

``tallies_count_often`` (a django-tasks task) adds the rows not tallied yet
and recounts the changed days (``services.tallies.tallies_count``), then
queues its own next run ``EVERY`` later; ``tallies --count --often`` starts
it. Cron or a systemd timer running ``tallies --count`` does the same
without a worker. Without either, every console page is still exact: it
reads the rows the tallies do not cover, more of them as time goes by.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.utils import timezone
from django_tasks import task

from submissions.scheduling import task_waiting
from submissions.services.tallies import tallies_count

logger = logging.getLogger("submissions.tallies")

EVERY = timedelta(minutes=5)


def tallies_schedule() -> bool:
    """Queue the recurring run unless one is waiting (or the backend cannot defer)."""
    if not tallies_count_often.get_backend().supports_defer or task_waiting(
        tallies_count_often
    ):
        return False
    tallies_count_often.enqueue()
    return True


@task()
def tallies_count_often() -> str:
    """Count what is new and what changed, then queue the next run."""
    try:
        report = tallies_count()
    finally:
        if tallies_count_often.get_backend().supports_defer:
            tallies_count_often.using(run_after=timezone.now() + EVERY).enqueue()
    logger.info(
        "tallies: %s submission(s), %s event(s) added, %s day(s) recounted",
        report.submissions,
        report.events,
        report.days_recounted,
    )
    return (
        f"{report.submissions} submissions, {report.events} events, "
        f"{report.days_recounted} days"
    )

"""Partitions on a schedule: the months ahead made daily by the task worker.

``partitions_ensure_daily`` (a django-tasks task) makes the months ahead
(``services.partitions.partitions_ensure``) and queues its own next run a
day later, as ``retention.retention_apply_daily`` does; ``partitions --ensure
--daily`` starts it. Cron or the systemd timer running ``partitions
--ensure`` does the same without a worker. A no-op on SQLite.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.utils import timezone
from django_tasks import task

from submissions.scheduling import task_waiting
from submissions.services import partitions

logger = logging.getLogger("submissions.partitions")

DAY = timedelta(days=1)


def _waiting() -> bool:
    return task_waiting(partitions_ensure_daily)


def partitions_schedule_daily() -> bool:
    """Queue the daily run unless one is waiting (or the backend cannot defer)."""
    if not partitions_ensure_daily.get_backend().supports_defer or _waiting():
        return False
    partitions_ensure_daily.enqueue()
    return True


@task()
def partitions_ensure_daily() -> str:
    """Make the months ahead, then queue the next run a day later."""
    try:
        made = partitions.partitions_ensure() if partitions.is_partitioned() else []
    finally:
        if partitions_ensure_daily.get_backend().supports_defer:
            partitions_ensure_daily.using(run_after=timezone.now() + DAY).enqueue()
    logger.info("partitions: %s made", len(made))
    return f"{len(made)} partitions made"

"""What the tasks that queue their own next run share (retention, partitions, tallies)."""

from __future__ import annotations

from typing import Any

from django.conf import settings


def task_waiting(task: Any) -> bool:
    """Whether a run of ``task`` is already queued (known only with the database backend)."""
    if "django_tasks_db" not in settings.INSTALLED_APPS:
        return False
    from django_tasks.base import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    return DBTaskResult.objects.filter(
        task_path=task.module_path, status=TaskResultStatus.READY
    ).exists()

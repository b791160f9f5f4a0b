"""The readiness probe's task: proof that the task worker takes work from the queue."""

from __future__ import annotations

from django_tasks import task


@task()
def readiness_probe() -> str:
    """Does nothing but finish; ``/readyz?task=1`` reads whether it waits too long.

    Each run deletes the finished probes before it, so probing leaves at most
    a couple of rows behind.
    """
    from django_tasks import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    DBTaskResult.objects.filter(
        task_path=PROBE_PATH,
        status__in=[TaskResultStatus.SUCCESSFUL, TaskResultStatus.FAILED],
    ).delete()
    return "ok"


PROBE_PATH = readiness_probe.module_path

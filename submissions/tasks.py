"""Background tasks, run by a task worker (``manage.py db_worker`` by default)."""

from django_tasks import task

from submissions.dispatch import follow_up_execute


@task()
def run_follow_up(event_id: int, try_number: int) -> str:
    """One try of a handler's follow-up work for a stored event."""
    return follow_up_execute(event_id=event_id, try_number=try_number).outcome

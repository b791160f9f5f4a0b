"""``/readyz``: should the load balancer send this process work?

``GET /readyz`` round-trips the database and checks it is migrated, like
``/healthz``. ``GET /readyz?task=1`` also asks whether the task queue is
served: with the database backend (django-tasks-db) it keeps one probe task
waiting in the queue and answers 503 when the waiting probe is older than
``DJANGO_READYZ_TASK_LAG_SECONDS`` (60 s), i.e. no task worker has taken work
for that long. A probe never waits on the worker: it enqueues a task if none
is waiting, and reads the age of the one that is. With a read replica
configured the body also says where staff reads go (``"replica"``: the
replica, or the primary while the replica is down or behind).

On PostgreSQL's partitioned tables the body also says how many months lie
ahead (``partitions.months_ahead``) and warns below two: the daily
``partitions --ensure`` has not run. A warning only: the process still
serves, and a delivery past every month is still stored (in ``_after``).

Once the console's tallies have been counted the body says when
(``"tallies": {"counted_at": ..., "marked_days": n}``) and warns when that
is more than ``TALLIES_STALE`` ago: the scheduled ``tallies --count`` has
stopped (the console stays exact, only slower).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import Error
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

from submissions.envelope import read_only_refusal
from webhookproject import replica
from webhookproject.health import database_migrated, database_ok

logger = logging.getLogger(__name__)

DATABASE_BACKEND = "django_tasks_db.DatabaseBackend"


def task_queue_state() -> dict[str, object]:
    """``{"queue": bool, "worker": bool | None, "waiting_seconds": float | None}``."""
    from django_tasks import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    from observability.tasks import PROBE_PATH, readiness_probe

    try:
        if settings.TASKS["default"]["BACKEND"] != DATABASE_BACKEND:
            # Another backend keeps its queue elsewhere: enqueueing is the test.
            readiness_probe.enqueue()
            return {"queue": True, "worker": None, "waiting_seconds": None}
        waiting = (
            DBTaskResult.objects.filter(
                task_path=PROBE_PATH, status=TaskResultStatus.READY
            )
            .order_by("enqueued_at")
            .values_list("enqueued_at", flat=True)
            .first()
        )
        if waiting is None:
            readiness_probe.enqueue()
            return {"queue": True, "worker": True, "waiting_seconds": 0.0}
    except Error:
        logger.warning("readyz: the task queue did not answer", exc_info=True)
        return {"queue": False, "worker": None, "waiting_seconds": None}
    age = timezone.now() - waiting
    lag = timedelta(seconds=settings.READYZ_TASK_LAG_SECONDS)
    return {
        "queue": True,
        "worker": age <= lag,
        "waiting_seconds": round(age.total_seconds(), 1),
    }


def partitions_state() -> dict[str, object]:
    """``{"partitions": {"months_ahead": n[, "warning": ...]}}``, or nothing on
    plain tables."""
    from submissions.services import partitions

    try:
        if not partitions.is_partitioned():
            return {}
        ahead = partitions.months_ahead()
    except Error:
        logger.warning("readyz: could not read the partitions", exc_info=True)
        return {}
    state: dict[str, object] = {"months_ahead": ahead}
    if ahead < partitions.MONTHS_AHEAD_WARN:
        state["warning"] = (
            f"Only {ahead} month(s) of partitions lie ahead: run "
            "`manage.py partitions --ensure` (daily)."
        )
        logger.warning("readyz: %s", state["warning"])
    return {"partitions": state}


#: Tallies counted longer ago than this: their schedule has stopped.
TALLIES_STALE = timedelta(hours=1)


def tallies_state() -> dict[str, object]:
    """``{"tallies": {"counted_at": ..., "marked_days": n[, "warning": ...]}}``, or
    nothing before the first count."""
    from submissions.models import TallyDay, TallyState

    try:
        counted_at = (
            TallyState.objects.filter(pk=1).values_list("counted_at", flat=True).first()
        )
        if counted_at is None:
            return {}
        marked = TallyDay.objects.count()
    except Error:
        logger.warning("readyz: could not read the tallies", exc_info=True)
        return {}
    state: dict[str, object] = {
        "counted_at": counted_at.isoformat(),
        "marked_days": marked,
    }
    if timezone.now() - counted_at > TALLIES_STALE:
        state["warning"] = (
            f"The console's tallies were last counted at {counted_at:%Y-%m-%d %H:%M} "
            "UTC: run `manage.py tallies --count` (every few minutes)."
        )
        logger.warning("readyz: %s", state["warning"])
    return {"tallies": state}


def readiness_response(request: HttpRequest) -> HttpResponse:
    if (refusal := read_only_refusal(request)) is not None:
        return refusal
    reachable = database_ok()
    migrated = reachable and database_migrated()
    body: dict[str, object] = {"database": reachable, "migrated": migrated}
    if replica.configured():
        # Reads fall back to the primary: a replica down or behind is reported,
        # not a reason to stop sending this process work.
        body.update(replica=replica.replica_report())
    ready = migrated
    if request.GET.get("task") in ("1", "true", "yes") and migrated:
        state = task_queue_state()
        body.update(tasks=state)
        ready = bool(state["queue"]) and state["worker"] is not False
    if migrated:
        body.update(partitions_state())
        body.update(tallies_state())
    body = {"status": "ready" if ready else "unavailable", **body}
    response = JsonResponse(body, status=200 if ready else 503)
    response["Cache-Control"] = "no-store"
    return response

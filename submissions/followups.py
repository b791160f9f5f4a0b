"""Follow-up work: a handler's ``follow_up``, run by the task worker after the reply.

``follow_up_enqueue`` queues it once the delivery's transaction commits;
``run_follow_up`` (the task) runs one try through ``follow_up_execute``; a
``TransientError`` schedules the next try after ``retry_delay_seconds``,
anything else (or the last try) leaves the run ``dead`` and the event
``failed``.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import traceback
from datetime import timedelta

from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django_tasks import task

from handlers import TransientError, registry
from handlers.running import call
from handlers.wire import handler_request, parse_delivery
from submissions.conf import webhook_settings
from submissions.models import HandlerRun, WebhookEvent
from submissions.services.runs import (
    handler_run_build,
    handler_run_save,
    webhook_event_finish,
)
from submissions.signals import follow_up_dead

logger = logging.getLogger("submissions.followups")


def follow_up_enqueue(
    *, event: WebhookEvent, try_number: int = 1, delay_seconds: int = 0
) -> None:
    """Queue the handler's ``follow_up`` for ``event`` once the current transaction commits."""

    def enqueue() -> None:
        task = run_follow_up
        if delay_seconds:
            task = task.using(
                run_after=timezone.now() + timedelta(seconds=delay_seconds)
            )
        task.enqueue(event_id=event.pk, try_number=try_number)

    transaction.on_commit(enqueue)


def retry_delay_seconds(try_number: int) -> int:
    """Exponential backoff: the base delay doubled for each try so far, capped."""
    conf = webhook_settings()
    return min(
        conf.follow_up_retry_seconds * 2 ** (try_number - 1),
        conf.follow_up_retry_max_seconds,
    )


def follow_up_execute(*, event_id: int, try_number: int) -> HandlerRun | None:
    """Run one try of an event's follow-up work and record it as a ``HandlerRun``.

    A ``TransientError`` before the last try schedules the next one; any other
    failure (or the last try's) is ``dead``, and the event becomes ``failed``.
    An event whose person's data was erased is skipped (None): no run.
    """
    event = WebhookEvent.objects.select_related("bot").get(pk=event_id)
    if event.erased_at is not None:
        # The person's data is gone: there is nothing left to follow up on.
        logger.info(
            "follow-up of event %s skipped: its data was erased",
            event.pk,
            extra={"event_id": event.pk},
        )
        return None
    handler_class = registry.get(event.handler_name)
    delivery = dataclasses.replace(
        parse_delivery(event.payload or {}, headers=event.headers or {}),
        delivery_id=event.delivery_id,
    )
    max_tries = handler_class.follow_up_max_attempts
    started_at, started = timezone.now(), time.perf_counter()
    error: dict[str, str] = {}
    try:
        with transaction.atomic():
            call(
                handler_class().follow_up,
                handler_request(
                    delivery,
                    payload=event.payload or {},
                    bot=event.bot,
                    event_id=event.pk,
                ),
            )
    except Exception as exc:  # recorded on the run, never raised into the worker
        transient = isinstance(exc, TransientError) and try_number < max_tries
        outcome = HandlerRun.Outcome.RETRYING if transient else HandlerRun.Outcome.DEAD
        error = {
            "error_type": f"{type(exc).__module__}.{type(exc).__qualname__}",
            "message": f"Follow-up try {try_number} of {max_tries}: {exc}",
            "traceback": traceback.format_exc(),
        }
        logger.warning(
            "follow-up of event %s failed (try %s of %s, %s)",
            event.pk,
            try_number,
            max_tries,
            outcome,
            exc_info=True,
            extra={"event_id": event.pk},
        )
    else:
        outcome = HandlerRun.Outcome.SUCCEEDED
    last = event.runs.aggregate(last=Max("attempt"))["last"] or 0
    run = handler_run_build(
        event=event,
        attempt=last + 1,
        trigger=HandlerRun.Trigger.FOLLOW_UP,
        started_at=started_at,
        duration_ms=round((time.perf_counter() - started) * 1000, 3),
        outcome=outcome,
        **error,
    )
    # Erased while the follow-up ran: the run records no message or traceback.
    handler_run_save(run=run)
    if outcome == HandlerRun.Outcome.RETRYING:
        follow_up_enqueue(
            event=event,
            try_number=try_number + 1,
            delay_seconds=retry_delay_seconds(try_number),
        )
    elif outcome == HandlerRun.Outcome.DEAD:
        webhook_event_finish(
            event=event,
            status=WebhookEvent.Status.FAILED,
            error_code="follow_up_failed",
            error_detail=f"{error['error_type']}: {error['message']}",
            traceback=error["traceback"],
        )
        follow_up_dead.send_robust(sender=WebhookEvent, event=event, run=run)
    return run


@task()
def run_follow_up(event_id: int, try_number: int) -> str:
    """One try of a handler's follow-up work for a stored event."""
    run = follow_up_execute(event_id=event_id, try_number=try_number)
    return "skipped: the event's data was erased" if run is None else run.outcome

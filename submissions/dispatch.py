"""Running a handler for a stored event: on delivery, and again on replay.

``handler_run_execute`` finds the handler registered under the event's
handler name, runs it inside a transaction (its writes roll back if it
raises), records a ``HandlerRun`` and updates the event's status to match
the run. It never raises for what a handler does.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
import traceback
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from handlers import (
    HandlerNotFound,
    ResponseBuilder,
    TransientError,
    WebhookRequest,
    registry,
)
from handlers.wire import Delivery, error_body, parse_delivery, render_reply
from submissions.conf import webhook_settings
from submissions.models import HandlerRun, WebhookEvent
from submissions.services import handler_run_create, webhook_event_finish

logger = logging.getLogger("submissions.dispatch")

EVENT_STATUS = {
    HandlerRun.Outcome.SUCCEEDED: WebhookEvent.Status.PROCESSED,
    HandlerRun.Outcome.FAILED: WebhookEvent.Status.FAILED,
    HandlerRun.Outcome.UNROUTED: WebhookEvent.Status.UNROUTED,
}
#: Events that can be run again. Rejected ones never parsed; replay a duplicate's original.
REPLAYABLE = [
    WebhookEvent.Status.RECEIVED,
    WebhookEvent.Status.PROCESSED,
    WebhookEvent.Status.FAILED,
    WebhookEvent.Status.UNROUTED,
]


@dataclass(frozen=True, slots=True)
class RunResult:
    run: HandlerRun
    status_code: int
    body: dict[str, Any]


class _HandlerFailed(Exception):
    """Carries a handler's failure out of its transaction, rolling its writes back."""


def handler_run_execute(
    *,
    event: WebhookEvent,
    delivery: Delivery,
    trigger: str = HandlerRun.Trigger.DELIVERY,
    attempt: int = 1,
    response_duration_from: float | None = None,
) -> RunResult:
    """Run the event's handler once; see the module docstring.

    The handler's writes, its ``HandlerRun`` and the event's new status are
    committed together, so a process killed mid-run leaves either all of
    them or none (the event then stays ``received``, to be taken over).
    When the handler raises, its transaction rolls back and the failed run
    and status are committed in a fresh one: the common, successful path
    needs no savepoint.

    ``response_duration_from`` (a ``perf_counter`` value) is given on delivery:
    the reply is then recorded on the event as what the bot was sent.
    """
    started_at, started = timezone.now(), time.perf_counter()
    record = functools.partial(
        _run_record,
        event=event,
        attempt=attempt,
        trigger=trigger,
        started_at=started_at,
        started=started,
        response_duration_from=response_duration_from,
    )
    try:
        handler_class = registry.get(delivery.handler_name)
    except HandlerNotFound as exc:
        body = error_body(
            "unknown_handler",
            f"{exc} The delivery is stored as event {event.pk} and can be replayed "
            "once the handler exists.",
        )
        with transaction.atomic():
            return record(
                outcome=HandlerRun.Outcome.UNROUTED,
                status_code=404,
                body=body,
                detail=str(exc),
                error={"error_type": "handlers.HandlerNotFound", "message": str(exc)},
            )

    try:
        with transaction.atomic():
            try:
                response = ResponseBuilder()
                handler_class().handle(_handler_request(event, delivery), response)
                reply = render_reply(response)
            except Exception as exc:  # a handler's failure is recorded, never raised
                logger.exception(
                    "handler %r failed for event %s",
                    delivery.handler_name,
                    event.pk,
                    extra={"event_id": event.pk},
                )
                error = {
                    "error_type": f"{type(exc).__module__}.{type(exc).__qualname__}",
                    "message": str(exc),
                    "traceback": traceback.format_exc(),
                }
                raise _HandlerFailed(error) from exc
            if handler_class.has_follow_up():
                follow_up_enqueue(event=event)
            return record(
                outcome=HandlerRun.Outcome.SUCCEEDED,
                status_code=200,
                body=reply,
                reply=reply,
            )
    except _HandlerFailed as failed:
        (error,) = failed.args
    body = error_body(
        "handler_error",
        f"The handler {delivery.handler_name!r} failed. The delivery is stored as "
        f"event {event.pk}; its answers are kept and it can be replayed after a fix.",
    )
    with transaction.atomic():
        return record(
            outcome=HandlerRun.Outcome.FAILED,
            status_code=500,
            body=body,
            detail=f"{error['error_type']}: {error['message']}",
            error=error,
        )


def _run_record(
    *,
    event: WebhookEvent,
    attempt: int,
    trigger: str,
    started_at: datetime,
    started: float,
    response_duration_from: float | None,
    outcome: str,
    status_code: int,
    body: dict[str, Any],
    reply: dict[str, Any] | None = None,
    detail: str = "",
    error: dict[str, str] | None = None,
) -> RunResult:
    """The run's ``HandlerRun`` and the event's status; the caller holds the transaction."""
    error = error or {}
    run = handler_run_create(
        event=event,
        attempt=attempt,
        trigger=trigger,
        started_at=started_at,
        duration_ms=round((time.perf_counter() - started) * 1000, 3),
        outcome=outcome,
        reply=reply,
        **error,
    )
    finish: dict[str, Any] = {}
    if response_duration_from is not None:
        finish = {
            "response_status": status_code,
            "response_body": body,
            "duration_ms": round(
                (time.perf_counter() - response_duration_from) * 1000, 3
            ),
        }
    webhook_event_finish(
        event=event,
        status=EVENT_STATUS[outcome],
        error_code="" if outcome == HandlerRun.Outcome.SUCCEEDED else body["error"],
        error_detail=detail,
        traceback=error.get("traceback", ""),
        **finish,
    )
    return RunResult(run=run, status_code=status_code, body=body)


def handler_run_take_over(
    *, original: WebhookEvent, delivery: Delivery, response_duration_from: float
) -> RunResult | None:
    """Run an original whose process died before it answered; None if it may be alive.

    An original still ``received`` with no reply after ``IN_FLIGHT_LEASE_SECONDS``
    (longer than the server's request timeout) was abandoned: its run never
    committed. One copy takes it over, holding the row lock while it runs, so
    concurrent copies skip it (and get 409) instead of running it twice.
    """
    lease = timedelta(seconds=webhook_settings().in_flight_lease_seconds)
    if original.received_at > timezone.now() - lease:
        return None
    with transaction.atomic():
        locked = (
            WebhookEvent.objects.select_for_update(skip_locked=True)
            .select_related("bot")
            .filter(
                pk=original.pk,
                status=WebhookEvent.Status.RECEIVED,
                response_status__isnull=True,
            )
            .first()
        )
        if locked is None:
            return None
        logger.warning(
            "taking over event %s, abandoned in flight",
            locked.pk,
            extra={"event_id": locked.pk},
        )
        return handler_run_execute(
            event=locked,
            delivery=delivery,
            response_duration_from=response_duration_from,
        )


def _handler_request(event: WebhookEvent, delivery: Delivery) -> WebhookRequest:
    return WebhookRequest(
        handler_name=delivery.handler_name,
        answers=delivery.answers,
        conversation_id=delivery.conversation_id,
        user_id=delivery.user_id,
        delivery_id=delivery.delivery_id,
        payload=event.payload or {},
        bot=event.bot,
        event_id=event.pk,
    )


def webhook_event_replay(*, event: WebhookEvent) -> HandlerRun:
    """Run a stored event through today's handler code; adds a run, never a submission."""
    if event.status not in REPLAYABLE:
        raise ValueError(
            f"Event {event.pk} is {event.status!r}; only {', '.join(REPLAYABLE)} events can be replayed."
        )
    delivery = parse_delivery(event.payload or {}, headers=event.headers or {})
    delivery = dataclasses.replace(delivery, delivery_id=event.delivery_id)
    last = event.runs.aggregate(last=Max("attempt"))["last"] or 0
    result = handler_run_execute(
        event=event,
        delivery=delivery,
        trigger=HandlerRun.Trigger.REPLAY,
        attempt=last + 1,
    )
    return result.run


# --- follow-up work -------------------------------------------------------------


def follow_up_enqueue(
    *, event: WebhookEvent, try_number: int = 1, delay_seconds: int = 0
) -> None:
    """Queue the handler's ``follow_up`` for ``event`` once the current transaction commits."""
    from submissions.tasks import run_follow_up

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


def follow_up_execute(*, event_id: int, try_number: int) -> HandlerRun:
    """Run one try of an event's follow-up work and record it as a ``HandlerRun``.

    A ``TransientError`` before the last try schedules the next one; any other
    failure (or the last try's) is ``dead``, and the event becomes ``failed``.
    """
    event = WebhookEvent.objects.select_related("bot").get(pk=event_id)
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
            handler_class().follow_up(_handler_request(event, delivery))
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
    run = handler_run_create(
        event=event,
        attempt=last + 1,
        trigger=HandlerRun.Trigger.FOLLOW_UP,
        started_at=started_at,
        duration_ms=round((time.perf_counter() - started) * 1000, 3),
        outcome=outcome,
        **error,
    )
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
    return run

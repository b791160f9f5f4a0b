"""Writes of a handler's runs and the event status each one leaves.

An event erased while its run was under way keeps no content of it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction

from submissions.models import (
    HandlerRun,
    WebhookEvent,
)
from submissions.services.storage import storage_for
from submissions.services.tally_marks import tally_event_mark


def _finish_fields(
    *,
    status: str,
    error_code: str = "",
    error_detail: str = "",
    traceback: str = "",
    response_status: int | None = None,
    response_body: dict[str, Any] | None = None,
    duration_ms: float | None = None,
) -> dict[str, Any]:
    """The event fields a run's end sets. The response fields record what the
    bot was sent, so a replay (which sends nothing) leaves them as they are by
    passing ``None``."""
    fields: dict[str, Any] = {
        "status": status,
        "error_code": error_code,
        "error_detail": error_detail,
        "traceback": traceback,
    }
    if response_status is not None:
        fields |= {"response_status": response_status, "response_body": response_body}
    if duration_ms is not None:
        fields["duration_ms"] = duration_ms
    return fields


#: What a run's end writes that may hold the person's data: an erased event
#: (``personal_data_erase``) keeps none of it, however late the run ends.
PERSONAL_EVENT_FIELDS = {"error_detail": "", "traceback": "", "response_body": None}


PERSONAL_RUN_FIELDS = {"reply": None, "message": "", "traceback": ""}


def _event_locked_unless_erased(event_pk: int) -> bool:
    """Lock ``event_pk``'s row for this transaction; whether it still holds data.

    The erasure updates the event first, so it waits for a run being
    recorded (and then scrubs it), or a run recorded after it sees the event
    erased and writes no content. False too when the event is gone.
    """
    erased = list(
        WebhookEvent.objects.select_for_update(no_key=True)
        .filter(pk=event_pk)
        .values_list("erased_at", flat=True)
    )
    return erased == [None]


def _event_update_unless_erased(event_pk: int, fields: dict[str, Any]) -> bool:
    """Set ``fields`` on the event; only the non-personal ones if it was erased.

    The conditional UPDATE takes the row lock: it waits for an erasure
    holding the row, then sees it erased. Whether the event keeps data."""
    kept = WebhookEvent.objects.filter(pk=event_pk, erased_at__isnull=True).update(
        **fields
    )
    if not kept:
        WebhookEvent.objects.filter(pk=event_pk).update(**_without_personal(fields))
    return bool(kept)


def _without_personal(fields: dict[str, Any]) -> dict[str, Any]:
    return {name: v for name, v in fields.items() if name not in PERSONAL_EVENT_FIELDS}


def _run_scrub(run: HandlerRun) -> None:
    for name, value in PERSONAL_RUN_FIELDS.items():
        setattr(run, name, value)


def webhook_event_finish(
    *,
    event: WebhookEvent,
    status: str,
    error_code: str = "",
    error_detail: str = "",
    traceback: str = "",
) -> None:
    """Record how a stored delivery's latest run ended, with no new run (a
    follow-up gone dead). An event erased meanwhile gets its status, never
    the error text."""
    fields = _finish_fields(
        status=status,
        error_code=error_code,
        error_detail=error_detail,
        traceback=traceback,
    )
    tally_event_mark(event)
    with transaction.atomic():
        if not _event_update_unless_erased(event.pk, fields):
            fields = _without_personal(fields)
    tally_event_mark(event)
    for name, value in fields.items():
        setattr(event, name, value)


def handler_run_save(*, run: HandlerRun) -> HandlerRun:
    """Insert ``run``; without its reply, message or traceback if its event was erased."""
    with transaction.atomic():
        if not _event_locked_unless_erased(run.event_id):
            _run_scrub(run)
        run.save(force_insert=True)
    return run


def handler_run_record(
    *,
    event: WebhookEvent,
    run: HandlerRun,
    status: str,
    error_code: str = "",
    error_detail: str = "",
    traceback: str = "",
    response_status: int | None = None,
    response_body: dict[str, Any] | None = None,
    duration_ms: float | None = None,
) -> HandlerRun:
    """Insert ``run`` and set ``event``'s status, error and (for a delivery) the
    reply its bot was sent, together: one statement on PostgreSQL, a
    transaction of two elsewhere (``services.storage``). The response fields
    left ``None`` (a replay sends nothing) keep what the event has.
    """
    fields = _finish_fields(
        status=status,
        error_code=error_code,
        error_detail=error_detail,
        traceback=traceback,
        response_status=response_status,
        response_body=response_body,
        duration_ms=duration_ms,
    )
    # A replay's, a follow-up's status on a day already counted: marked
    # before (read live meanwhile) and after (a recount in between saw the
    # old status).
    tally_event_mark(event)
    if not storage_for().run_insert(event=event, run=run, fields=fields):
        # Erased meanwhile (or gone): its status, and a run without content.
        fields = _without_personal(fields)
        _run_scrub(run)
        with transaction.atomic():
            WebhookEvent.objects.filter(pk=event.pk).update(**fields)
            run.save(force_insert=True)
    tally_event_mark(event)
    for name, value in fields.items():
        setattr(event, name, value)
    return run


def handler_run_build(
    *,
    event: WebhookEvent,
    attempt: int,
    trigger: str,
    started_at: datetime,
    duration_ms: float,
    outcome: str,
    reply: dict[str, Any] | None = None,
    error_type: str = "",
    message: str = "",
    traceback: str = "",
) -> HandlerRun:
    """A run of ``event``'s handler, not saved: for ``handler_run_record`` or
    ``handler_run_save``."""
    return HandlerRun(
        event=event,
        attempt=attempt,
        trigger=trigger,
        handler_name=event.handler_name,
        started_at=started_at,
        finished_at=started_at + timedelta(milliseconds=duration_ms),
        duration_ms=duration_ms,
        outcome=outcome,
        reply=reply,
        error_type=error_type,
        message=message,
        traceback=traceback,
        received_at=event.received_at,
    )


def handler_run_record_late(
    *,
    run_id: int,
    message: str,
    reply: dict[str, Any] | None = None,
    error_type: str = "",
    traceback: str = "",
) -> None:
    """What a timed-out handler came to after all (recorded, never sent).

    Nothing of it when the run's event was erased meanwhile."""
    with transaction.atomic():
        event_id = (
            HandlerRun.objects.filter(pk=run_id)
            .values_list("event_id", flat=True)
            .first()
        )
        if event_id is None or not _event_locked_unless_erased(event_id):
            return
        HandlerRun.objects.filter(pk=run_id).update(
            message=message, reply=reply, error_type=error_type, traceback=traceback
        )

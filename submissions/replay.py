"""Replays: stored events run again through today's handler code.

One loop for the admin action and the ``replay_events`` command. A replay
adds a run and never a submission; it sends nothing, so the event's
recorded reply stays the one its bot got.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator

from django.db.models import Max

from handlers.wire import parse_delivery
from submissions.dispatch import handler_run_execute, handler_run_record_ran
from submissions.models import HandlerRun, WebhookEvent

#: Events that can be run again. Rejected and unparsed ones were never read
#: (read them again first: ``reparse_events``); replay a duplicate's original.
REPLAYABLE = [
    WebhookEvent.Status.RECEIVED,
    WebhookEvent.Status.PROCESSED,
    WebhookEvent.Status.FAILED,
    WebhookEvent.Status.UNROUTED,
]


def webhook_event_replay(*, event: WebhookEvent) -> HandlerRun:
    """Run a stored event through today's handler code; adds a run, never a submission."""
    if event.status not in REPLAYABLE:
        raise ValueError(
            f"Event {event.pk} is {event.status!r}; only {', '.join(REPLAYABLE)} events can be replayed."
        )
    delivery = parse_delivery(
        event.payload or {}, headers=event.headers or {}, mapping=event.bot.mapping()
    )
    delivery = dataclasses.replace(delivery, delivery_id=event.delivery_id)
    last = event.runs.aggregate(last=Max("attempt"))["last"] or 0
    ran = handler_run_execute(
        event=event,
        delivery=delivery,
        trigger=HandlerRun.Trigger.REPLAY,
        attempt=last + 1,
    )
    return handler_run_record_ran(ran=ran)


def webhook_events_replay(
    *, events: Iterable[WebhookEvent]
) -> Iterator[tuple[str, HandlerRun]]:
    """Replay ``events`` one by one, in the order given.

    Yields each event's status before the replay and the new run. Events
    that cannot be replayed (rejected, duplicates) are skipped: the caller
    counts what it gave against what came back.
    """
    for event in events:
        if event.status in REPLAYABLE:
            before = event.status
            yield before, webhook_event_replay(event=event)

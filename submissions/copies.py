"""Copies of a delivery: the original's reply, waited for while it runs, and the
take-over of an original whose process died before it answered.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone

from handlers import HandlerNotFound, registry
from handlers.wire import Delivery
from submissions.conf import webhook_settings
from submissions.dispatch import (
    Ran,
    deadline_seconds,
    handler_run_execute,
    pooled_connections_release,
)
from submissions.models import WebhookEvent

logger = logging.getLogger("submissions.copies")


def handler_run_take_over(
    *,
    original: WebhookEvent,
    delivery: Delivery,
) -> Ran | None:
    """Run an original whose process died before it answered; None if it may be alive.

    The caller records the run (``dispatch.handler_run_record_ran``) with the
    reply it sends.

    An original still ``received`` with no reply after ``IN_FLIGHT_LEASE_SECONDS``
    (longer than the server's request timeout) was abandoned: its run never
    committed. One copy claims it with a conditional UPDATE of ``claimed_at``
    (committed at once, so no lock is held while the handler runs); a
    concurrent copy's UPDATE then matches nothing, and it gets 409. A claim
    is a new lease: if the claiming process dies too, a copy after it takes
    over again.
    """
    lease = timedelta(seconds=webhook_settings().in_flight_lease_seconds)
    now = timezone.now()
    expired = now - lease
    claimed = (  # one autocommitted UPDATE: committed before the handler runs
        WebhookEvent.objects.filter(
            pk=original.pk,
            status=WebhookEvent.Status.RECEIVED,
            response_status__isnull=True,
        )
        .filter(
            Q(claimed_at__isnull=True, received_at__lte=expired)
            | Q(claimed_at__lte=expired)
        )
        .update(claimed_at=now)
    )
    if not claimed:
        return None
    event = WebhookEvent.objects.select_related("bot").get(pk=original.pk)
    logger.warning(
        "taking over event %s, abandoned in flight",
        event.pk,
        extra={"event_id": event.pk},
    )
    return handler_run_execute(event=event, delivery=delivery)


#: A copy waiting for its original's reply reads it again after these pauses
#: (seconds), the last repeated until the wait ends.
REPLY_POLL_PAUSES = (0.02, 0.05, 0.1, 0.2)
#: Beyond the handler's deadline, the time an original's run takes to be
#: recorded: a copy waits for that too before it gives up.
RECORD_GRACE_SECONDS = 1.0


def webhook_event_reply_await(
    *, original: WebhookEvent
) -> tuple[int, dict[str, Any]] | None:
    """The reply ``original`` was sent, once its run (in flight elsewhere) records it.

    Read again at short, growing intervals until the original's handler
    deadline has passed since it was received (plus ``RECORD_GRACE_SECONDS``);
    None if it had not answered by then. Between reads the pooled
    connection goes back to the pool and no transaction or lock is held
    (each read is one autocommitted ``SELECT``), so waiting copies cost the
    database nothing but those reads.
    """
    try:
        handler_class = registry.get(original.handler_name)
    except HandlerNotFound:
        handler_class = None
    deadline = deadline_seconds(handler_class) + RECORD_GRACE_SECONDS
    waited_since = original.received_at or timezone.now()
    remaining = deadline - (timezone.now() - waited_since).total_seconds()
    until = time.monotonic() + min(max(remaining, 0.0), deadline)
    pauses = iter(REPLY_POLL_PAUSES)
    pause = REPLY_POLL_PAUSES[0]
    while True:
        row = (
            WebhookEvent.objects.filter(pk=original.pk)
            .values_list("response_status", "response_body")
            .first()
        )
        if row is not None and row[0] is not None:
            return row[0], row[1]
        now = time.monotonic()
        if now >= until:
            return None
        pooled_connections_release()
        time.sleep(min(pause, until - now))
        pause = next(pauses, pause)

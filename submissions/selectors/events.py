"""Reads of stored events: what a replay would run."""

from __future__ import annotations

from datetime import datetime

from django.db.models import (
    QuerySet,
)

from submissions.models import (
    Bot,
    WebhookEvent,
)
from submissions.selectors.exports import _filtered


def webhook_event_replay_queryset(
    *,
    statuses: list[str],
    bot: Bot | None = None,
    handler_name: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    event_ids: list[int] | None = None,
) -> QuerySet[WebhookEvent]:
    """Events to replay, oldest first (the order they arrived)."""
    events = _filtered(
        WebhookEvent.objects.select_related("bot").filter(status__in=statuses),
        time_field="received_at",
        bot=bot,
        handler_name=handler_name,
        since=since,
        until=until,
    )
    if event_ids:
        events = events.filter(pk__in=event_ids)
    return events.order_by("received_at", "id")

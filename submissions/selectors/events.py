"""Reads of stored events: what a replay would run, and how many that is."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from django.db.models import Count, Max, QuerySet
from django.utils.dateparse import parse_datetime

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


@dataclasses.dataclass(frozen=True, kw_only=True)
class ReplayFilter:
    """What a bulk replay selects, kept as JSON on its ``ReplayJob``."""

    statuses: list[str]
    bot_id: int | None = None
    handler_name: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    event_ids: list[int] | None = None

    def as_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for name in ("since", "until"):
            if data[name] is not None:
                data[name] = data[name].isoformat()
        return {key: value for key, value in data.items() if value is not None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReplayFilter:
        moments = {
            name: parse_datetime(data[name])
            for name in ("since", "until")
            if data.get(name)
        }
        return cls(
            statuses=list(data["statuses"]),
            bot_id=data.get("bot_id"),
            handler_name=data.get("handler_name"),
            event_ids=data.get("event_ids"),
            **moments,
        )

    def describe(self) -> str:
        """The filter in words, for the confirmation page and the command."""
        parts = [f"status {' or '.join(self.statuses)}"]
        if self.bot_id is not None:
            bot = Bot.objects.filter(pk=self.bot_id).only("slug").first()
            parts.append(f"bot {bot.slug if bot else f'#{self.bot_id} (gone)'}")
        if self.handler_name is not None:
            parts.append(f"handler {self.handler_name}")
        if self.since is not None:
            parts.append(f"received at or after {self.since.isoformat()}")
        if self.until is not None:
            parts.append(f"received before {self.until.isoformat()}")
        if self.event_ids:
            parts.append(f"{len(self.event_ids)} chosen event(s)")
        return ", ".join(parts)

    def events(self) -> QuerySet[WebhookEvent]:
        """The events it selects, unordered and without joins (cheap to count)."""
        events = _filtered(
            WebhookEvent.objects.filter(status__in=self.statuses),
            time_field="received_at",
            bot=None,
            handler_name=self.handler_name,
            since=self.since,
            until=self.until,
        )
        if self.bot_id is not None:
            events = events.filter(bot_id=self.bot_id)
        if self.event_ids:
            events = events.filter(pk__in=self.event_ids)
        return events.order_by()


def replay_estimate(*, selected: ReplayFilter) -> tuple[int, int]:
    """How many events ``selected`` picks now, and the highest id among them.

    One aggregate over the filter's indexes (status, bot, handler and time
    each lead one), no rows read into Python; the job replays no event above
    that id, so what arrives later is not counted nor replayed.
    """
    found = selected.events().aggregate(count=Count("id"), last=Max("id"))
    return found["count"], found["last"] or 0

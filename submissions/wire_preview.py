"""A wire mapping tried on a bot's last stored deliveries: its preview and its check.

``wire_mapping_preview`` says what each of the bot's last stored deliveries
would yield under a mapping (handler, ids, answers, or why it cannot be
read); ``wire_mapping_validate`` refuses a mapping that cannot be used, or
one with a pointer that finds nothing in any of those deliveries, naming
the pointer and why. Used by the bot's admin page and ``manage.py
wire_mapping``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError

from handlers.mapping import MappingError, WireMapping, pointer_trouble, resolve
from handlers.wire import WireError, parse_delivery
from submissions.masking import can_see_sensitive, is_sensitive, mask_value
from submissions.models import Bot, WebhookEvent
from submissions.services.reparse import REPARSABLE

#: How many of a bot's last stored deliveries a mapping is tried on.
PREVIEW_EVENTS = 10
#: Answers shown per delivery in a preview.
PREVIEW_ANSWERS = 20


@dataclass(frozen=True, slots=True)
class PreviewRow:
    event_id: int
    received_at: datetime
    status: str
    handler_name: str = ""
    conversation_id: str = ""
    user_id: str = ""
    delivery_id: str = ""
    answers: tuple[tuple[str, Any], ...] = ()
    answer_count: int = 0
    error: str = ""


def _recent_bodies(bot: Bot) -> list[tuple[WebhookEvent, Any]]:
    if bot.pk is None:  # a bot being added: nothing stored yet
        return []
    events = (
        WebhookEvent.objects.filter(
            bot=bot, status__in=REPARSABLE, erased_at__isnull=True, body_truncated=False
        )
        .only("pk", "received_at", "status", "raw_body")
        .order_by("-received_at", "-id")[:PREVIEW_EVENTS]
    )
    found = []
    for event in events:
        try:
            found.append((event, json.loads(bytes(event.raw_body))))
        except ValueError:
            continue
    return found


def wire_mapping_preview(*, bot: Bot, data: Any, user: Any = None) -> list[PreviewRow]:
    """What the bot's last stored deliveries yield under ``data`` (a mapping as JSON).

    Sensitive answers are masked unless ``user`` may see them (``user`` None:
    a command, run by someone with the database in hand).
    """
    mapping = WireMapping.from_json(data)
    reveal = user is None or can_see_sensitive(user)
    rows = []
    for event, body in _recent_bodies(bot):
        if not isinstance(body, dict):
            continue
        try:
            delivery = parse_delivery(body, headers={}, mapping=mapping)
        except WireError as exc:
            rows.append(
                PreviewRow(event.pk, event.received_at, event.status, error=exc.detail)
            )
            continue
        answers = tuple(
            (
                a.key,
                a.value
                if reveal or not is_sensitive(key=a.key, input_type=a.input_type)
                else mask_value(a.value),
            )
            for a in delivery.answers[:PREVIEW_ANSWERS]
        )
        rows.append(
            PreviewRow(
                event.pk,
                event.received_at,
                event.status,
                handler_name=delivery.handler_name,
                conversation_id=delivery.conversation_id,
                user_id=delivery.user_id,
                delivery_id=delivery.delivery_id,
                answers=answers,
                answer_count=len(delivery.answers),
            )
        )
    return rows


def wire_mapping_validate(*, bot: Bot, data: Any) -> WireMapping:
    """``data`` as a ``WireMapping``, or ``ValidationError`` with the sentence why.

    Beyond its form (``WireMapping.from_json``), every pointer must find
    something in at least one of the bot's last stored deliveries, when it
    has any: a pointer that finds nothing in all of them is refused, with
    where it stopped in the latest.
    """
    try:
        mapping = WireMapping.from_json(data)
    except MappingError as exc:
        raise ValidationError(str(exc)) from None
    bodies = [body for _, body in _recent_bodies(bot)]
    if not bodies:
        return mapping
    for name, pointer in mapping.pointers():
        if all(resolve(body, pointer) is None for body in bodies):
            trouble = pointer_trouble(bodies[0], pointer) or "it is null"
            raise ValidationError(
                f"`{name}` is {pointer!r}, which finds nothing in any of the bot's "
                f"last {len(bodies)} stored deliveries (in the latest, {trouble}). "
                "Check the spelling against a stored body on the bot's page."
            )
    return mapping

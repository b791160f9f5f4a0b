"""Writes of one delivery: its event, submission and answers, a refused request, a copy.

Plain functions, keyword-only; they decide no HTTP status (the intake maps
what they return to replies).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction

from handlers.wire import Delivery
from submissions.incoming import IncomingRequest
from submissions.models import (
    Bot,
    FormAnswer,
    FormSubmission,
    WebhookEvent,
)
from submissions.services.storage import storage_for
from submissions.values import value_as_text


def _event_fields(incoming: IncomingRequest, *, body_cap: int | None) -> dict[str, Any]:
    raw = incoming.raw_body if body_cap is None else incoming.raw_body[:body_cap]
    return {
        "received_at": incoming.received_at,
        "remote_addr": incoming.remote_addr,
        "headers": dict(incoming.headers),
        "raw_body": raw,
        "body_size": incoming.body_size,
        "body_truncated": len(raw) < incoming.body_size,
        "body_sha256": incoming.body_sha256,
    }


def webhook_event_record_rejected(
    *,
    bot: Bot,
    incoming: IncomingRequest,
    response_status: int,
    response_body: dict[str, Any],
    body_cap: int | None,
    status: str = WebhookEvent.Status.REJECTED,
    payload: dict[str, Any] | None = None,
    duration_ms: float | None = None,
    token_info: dict[str, Any] | None = None,
) -> WebhookEvent:
    """Store a request that was refused, keeping at most ``body_cap`` bytes of its body
    (all of it with None: an ``unparsed`` delivery, verified, to be read again).

    In a savepoint of its own: if the insert fails inside a caller's
    transaction, the intake's floor can still store a minimal event.
    """
    with transaction.atomic():
        return WebhookEvent.objects.create(
            bot=bot,
            status=status,
            error_code=response_body.get("error", ""),
            error_detail=response_body.get("detail", ""),
            payload=payload,
            response_status=response_status,
            response_body=response_body,
            duration_ms=duration_ms,
            token_info=token_info,
            **_event_fields(incoming, body_cap=body_cap),
        )


def webhook_event_record_minimal(
    *,
    bot: Bot,
    incoming: IncomingRequest,
    response_status: int,
    response_body: dict[str, Any],
    error_detail: str,
    duration_ms: float | None = None,
) -> WebhookEvent:
    """The least a request leaves when storing it failed: no body, no headers.

    Its own transaction, so it commits whatever state the failed one left.
    """
    with transaction.atomic():
        return WebhookEvent.objects.create(
            bot=bot,
            received_at=incoming.received_at,
            status=WebhookEvent.Status.REJECTED,
            error_code=response_body.get("error", ""),
            error_detail=error_detail,
            body_size=incoming.body_size,
            body_truncated=incoming.body_size > 0,
            body_sha256=incoming.body_sha256,
            response_status=response_status,
            response_body=response_body,
            duration_ms=duration_ms,
        )


@dataclass(frozen=True, slots=True)
class Stored:
    """A delivery stored by ``webhook_event_record_delivery``: its event, and its
    submission when it had answers."""

    event: WebhookEvent
    submission: FormSubmission | None


@dataclass(frozen=True, slots=True)
class Copy:
    """A delivery whose id was stored before: nothing was stored; ``original`` is
    the first. The copy is recorded with ``webhook_event_record_duplicate`` once
    the intake knows its answer."""

    original: WebhookEvent


def webhook_event_record_delivery(
    *,
    bot: Bot,
    incoming: IncomingRequest,
    payload: dict[str, Any],
    delivery: Delivery,
) -> Stored | Copy:
    """Store an accepted delivery with its submission and answers, in one transaction.

    Three inserts whatever the number of answers (they go in one bulk insert).
    A delivery id already stored for this bot is refused by the database's
    unique constraint (not by a read first), so concurrent copies of one
    delivery cannot both get through; for a copy, the original is returned.
    """
    event = WebhookEvent(
        bot=bot,
        status=WebhookEvent.Status.RECEIVED,
        handler_name=delivery.handler_name,
        payload=payload,
        delivery_id=delivery.delivery_id,
        conversation_id=delivery.conversation_id,
        user_id=delivery.user_id,
        **_event_fields(incoming, body_cap=None),
    )
    try:
        submission = _delivery_insert(event=event, delivery=delivery)
    except IntegrityError:
        original = (
            WebhookEvent.objects.filter(
                bot=bot, delivery_id=delivery.delivery_id, duplicate_of__isnull=True
            ).first()
            if delivery.delivery_id
            else None
        )
        if original is None:
            raise
        return Copy(original=original)
    return Stored(event=event, submission=submission)


def _delivery_insert(
    *, event: WebhookEvent, delivery: Delivery
) -> FormSubmission | None:
    """Insert ``event`` and its submission and answers, all or nothing.

    By the database's storage backend (``services.storage``): one statement
    on PostgreSQL, three inserts in a transaction elsewhere.
    """
    submission = (
        FormSubmission(
            event=event,
            bot=event.bot,
            handler_name=delivery.handler_name,
            conversation_id=delivery.conversation_id,
            user_id=delivery.user_id,
            submitted_at=event.received_at,
            received_at=event.received_at,
        )
        if delivery.answers
        else None
    )
    answers = form_answers_build(
        submission=submission, delivery=delivery, received_at=event.received_at
    )
    storage_for().delivery_insert(event=event, submission=submission, answers=answers)
    return submission


def form_answers_build(
    *, submission: FormSubmission | None, delivery: Delivery, received_at: Any
) -> list[FormAnswer]:
    """The answer rows of ``delivery``, in order, unsaved; ``received_at`` is
    their event's (the month they are stored in)."""
    return [
        FormAnswer(
            submission=submission,
            position=position,
            key=answer.key,
            label=answer.label,
            input_type=answer.input_type,
            value=answer.value,
            value_text=value_as_text(answer.value),
            received_at=received_at,
        )
        for position, answer in enumerate(delivery.answers)
    ]


def webhook_event_record_duplicate(
    *,
    original: WebhookEvent,
    incoming: IncomingRequest,
    payload: dict[str, Any],
    delivery: Delivery,
    response_status: int,
    response_body: dict[str, Any],
) -> WebhookEvent:
    """A ``duplicate`` row pointing at ``original``, with the reply it was sent."""
    return WebhookEvent.objects.create(
        bot=original.bot,
        status=WebhookEvent.Status.DUPLICATE,
        duplicate_of=original,
        handler_name=delivery.handler_name,
        payload=payload,
        delivery_id=delivery.delivery_id,
        conversation_id=delivery.conversation_id,
        user_id=delivery.user_id,
        response_status=response_status,
        response_body=response_body,
        **_event_fields(incoming, body_cap=None),
    )

"""Reading stored deliveries again with their bot's current wire mapping.

``webhook_events_reparse`` walks a bot's stored events in batches, reads
each raw body again (``handlers.wire``) with the bot's mapping as it is
now, and brings the rows in line: the submission and answers a delivery
lacked are created, answers whose extraction changed are replaced, the
handler name and ids follow the body. Each change is recorded on the event
(``parse_history``: when, by whom, what changed; counts and field names,
never the values). No handler runs: ``replay_events`` does that, for the
events chosen. It is idempotent (a second pass finds nothing to change),
never touches an erased event, and holds no transaction across events.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from handlers.mapping import WireMapping
from handlers.wire import Delivery, WireError, parse_delivery, parse_json
from submissions.models import Bot, FormAnswer, FormSubmission, WebhookEvent
from submissions.services.deliveries import form_answers_build
from submissions.services.tally_marks import tally_moments_mark

#: Events a re-read looks at by default: those whose body was read, or not.
REPARSABLE = (
    WebhookEvent.Status.UNPARSED,
    WebhookEvent.Status.RECEIVED,
    WebhookEvent.Status.PROCESSED,
    WebhookEvent.Status.FAILED,
    WebhookEvent.Status.UNROUTED,
)


@dataclass(frozen=True, slots=True)
class Reparsed:
    """What reading one event again came to.

    ``change`` is ``created`` (a submission it lacked), ``replaced`` (its
    answers or fields changed), ``unchanged``, ``unreadable`` (the mapping
    still cannot read it; ``detail`` says why) or ``skipped`` (erased, or
    its body was cut short).
    """

    event_id: int
    change: str
    status_before: str
    status_after: str
    detail: str = ""
    fields: tuple[str, ...] = field(default=())


def _answers_of(submission: FormSubmission | None) -> list[tuple[Any, ...]]:
    if submission is None:
        return []
    return list(
        submission.answers.order_by("position").values_list(
            "key", "label", "input_type", "value"
        )
    )


def _wanted(delivery: Delivery) -> list[tuple[Any, ...]]:
    return [(a.key, a.label, a.input_type, a.value) for a in delivery.answers]


def _read(event: WebhookEvent, mapping: WireMapping | None) -> Delivery:
    payload = parse_json(bytes(event.raw_body))
    delivery = parse_delivery(payload, headers={}, mapping=mapping)
    if not delivery.delivery_id and event.delivery_id:
        # From a header or the token's jti, which a re-read does not have.
        delivery = Delivery(
            handler_name=delivery.handler_name,
            answers=delivery.answers,
            conversation_id=delivery.conversation_id,
            user_id=delivery.user_id,
            delivery_id=event.delivery_id,
        )
    return delivery


def webhook_event_reparse(
    *, event: WebhookEvent, mapping: WireMapping | None, by: str, dry_run: bool = False
) -> Reparsed:
    """Read ``event`` again with ``mapping``; see the module docstring."""
    before = event.status
    if event.erased_at is not None or event.body_truncated or not event.raw_body:
        return Reparsed(event.pk, "skipped", before, before, "erased or cut short")
    try:
        delivery = _read(event, mapping)
    except WireError as exc:
        return Reparsed(event.pk, "unreadable", before, before, exc.detail)
    submission = FormSubmission.objects.filter(event=event).first()
    answers_now, answers_wanted = _answers_of(submission), _wanted(delivery)
    fields = {
        "handler_name": delivery.handler_name,
        "conversation_id": delivery.conversation_id,
        "user_id": delivery.user_id,
    }
    if not event.delivery_id and delivery.delivery_id:
        fields["delivery_id"] = delivery.delivery_id
    original = None
    if "delivery_id" in fields:
        original = (
            WebhookEvent.objects.filter(
                bot_id=event.bot_id,
                delivery_id=fields["delivery_id"],
                duplicate_of__isnull=True,
            )
            .exclude(pk=event.pk)
            .first()
        )
    changed = [name for name, value in fields.items() if getattr(event, name) != value]
    status = before
    if before == WebhookEvent.Status.UNPARSED:
        # Read now, but no handler ran: ``received``, for replay_events to run;
        # a copy of a delivery already stored is a ``duplicate`` of it.
        status = (
            WebhookEvent.Status.DUPLICATE if original else WebhookEvent.Status.RECEIVED
        )
    if original is not None:
        answers_wanted = []
        delivery = Delivery(
            handler_name=delivery.handler_name,
            answers=(),
            conversation_id=delivery.conversation_id,
            user_id=delivery.user_id,
            delivery_id=delivery.delivery_id,
        )
    if status != before:
        changed.append("status")
    if answers_now != answers_wanted:
        changed.append("answers")
    if not changed:
        return Reparsed(event.pk, "unchanged", before, before)
    change = "created" if submission is None and answers_wanted else "replaced"
    if dry_run:
        return Reparsed(event.pk, change, before, status, fields=tuple(changed))
    entry = {
        "at": timezone.now().isoformat(),
        "by": by,
        "changed": changed,
        "answers": [len(answers_now), len(answers_wanted)],
        "status": [before, status],
        "mapping": mapping.to_json() if mapping else {},
    }
    with transaction.atomic():
        locked = WebhookEvent.objects.select_for_update().get(pk=event.pk)
        if locked.erased_at is not None:  # erased meanwhile: never resurrected
            return Reparsed(event.pk, "skipped", before, before, "erased")
        tally_moments_mark(
            [locked.received_at, *([submission.submitted_at] if submission else [])]
        )
        updates: dict[str, Any] = dict(fields) | {
            "parse_history": [*(locked.parse_history or []), entry],
        }
        if status != before:
            updates |= {"status": status, "error_code": "", "error_detail": ""}
        if original is not None:
            updates["duplicate_of"] = original
        WebhookEvent.objects.filter(pk=event.pk).update(**updates)
        if "answers" in changed or submission is not None:
            _submission_write(event=locked, submission=submission, delivery=delivery)
    for name, value in updates.items():
        setattr(event, name, value)
    return Reparsed(event.pk, change, before, status, fields=tuple(changed))


def _submission_write(
    *, event: WebhookEvent, submission: FormSubmission | None, delivery: Delivery
) -> None:
    """The event's submission and answers as ``delivery`` has them."""
    if not delivery.answers:
        if submission is not None:
            submission.delete()
        return
    if submission is None:
        submission = FormSubmission.objects.create(
            event=event,
            bot_id=event.bot_id,
            handler_name=delivery.handler_name,
            conversation_id=delivery.conversation_id,
            user_id=delivery.user_id,
            submitted_at=event.received_at,
            received_at=event.received_at,
        )
    else:
        FormSubmission.objects.filter(pk=submission.pk).update(
            handler_name=delivery.handler_name,
            conversation_id=delivery.conversation_id,
            user_id=delivery.user_id,
        )
        submission.answers.all().delete()
    FormAnswer.objects.bulk_create(
        form_answers_build(
            submission=submission,
            delivery=delivery,
            received_at=submission.received_at,
        )
    )


def webhook_events_reparse(
    *,
    bot: Bot,
    by: str,
    since: datetime | None = None,
    statuses: Iterable[str] = REPARSABLE,
    dry_run: bool = False,
    batch_size: int = 500,
) -> Iterator[Reparsed]:
    """Read ``bot``'s stored events again, oldest first, ``batch_size`` at a time.

    Each event is its own transaction; the next batch is read by id after
    the last, so a long re-read holds nothing between events and sees
    events stored while it runs.
    """
    mapping = Bot.objects.get(pk=bot.pk).mapping()  # as saved now, not as cached
    events = WebhookEvent.objects.filter(
        bot=bot, status__in=list(statuses), erased_at__isnull=True
    ).defer("payload", "response_body", "headers", "token_info")
    if since is not None:
        events = events.filter(received_at__gte=since)
    last = 0
    while True:
        batch = list(events.filter(pk__gt=last).order_by("pk")[:batch_size])
        if not batch:
            return
        for event in batch:
            yield webhook_event_reparse(
                event=event, mapping=mapping, by=by, dry_run=dry_run
            )
        last = batch[-1].pk

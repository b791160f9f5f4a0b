"""Writes: the rows of one delivery, its runs, its status, and bots' secrets.

Plain functions, keyword-only; they decide no HTTP status (the intake maps
what they return to replies). Handlers' own writes are theirs.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Model
from django.utils import timezone

from handlers.wire import Delivery
from submissions import statements
from submissions.conf import webhook_settings
from submissions.incoming import IncomingRequest
from submissions.models import (
    Bot,
    ErasureLog,
    FormAnswer,
    FormSubmission,
    HandlerRun,
    RetentionPolicy,
    WebhookEvent,
)
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
        "body_sha256": hashlib.sha256(incoming.raw_body).hexdigest()
        if incoming.body_complete
        else "",
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
    delivery: Delivery | None = None,
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
            handler_name=delivery.handler_name if delivery else "",
            conversation_id=delivery.conversation_id if delivery else "",
            user_id=delivery.user_id if delivery else "",
            delivery_id=delivery.delivery_id if delivery else "",
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
            body_sha256=hashlib.sha256(incoming.raw_body).hexdigest()
            if incoming.body_complete
            else "",
            response_status=response_status,
            response_body=response_body,
            duration_ms=duration_ms,
        )


@dataclass(frozen=True, slots=True)
class Recorded:
    """What ``webhook_event_record_delivery`` stored.

    ``original`` is set when the delivery id was seen before: nothing was
    stored then, and the copy is recorded with ``webhook_event_record_duplicate``
    once the intake knows its answer.
    """

    event: WebhookEvent | None = None
    submission: FormSubmission | None = None
    original: WebhookEvent | None = None


def webhook_event_record_delivery(
    *,
    bot: Bot,
    incoming: IncomingRequest,
    payload: dict[str, Any],
    delivery: Delivery,
) -> Recorded:
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
        return Recorded(original=original)
    return Recorded(event=event, submission=submission)


def _delivery_insert(
    *, event: WebhookEvent, delivery: Delivery
) -> FormSubmission | None:
    """Insert ``event`` and its submission and answers, all or nothing.

    One statement on PostgreSQL (``submissions.statements``), three inserts
    in a transaction elsewhere. Inside a caller's transaction, in a
    savepoint, so a duplicate's ``IntegrityError`` leaves it usable.
    """
    submission = (
        FormSubmission(
            event=event,
            bot=event.bot,
            handler_name=delivery.handler_name,
            conversation_id=delivery.conversation_id,
            user_id=delivery.user_id,
            submitted_at=event.received_at,
        )
        if delivery.answers
        else None
    )
    answers = [
        FormAnswer(
            submission=submission,
            position=position,
            key=answer.key,
            label=answer.label,
            input_type=answer.input_type,
            value=answer.value,
            value_text=value_as_text(answer.value),
        )
        for position, answer in enumerate(delivery.answers)
    ]
    if not statements.is_supported():
        with transaction.atomic():
            event.save(force_insert=True)
            if submission is not None:
                submission.save(force_insert=True)
                FormAnswer.objects.bulk_create(answers)
        return submission
    clauses = [("e", statements.insert_sql([event], returning=True))]
    final = "SELECT (SELECT id FROM e)"
    if submission is not None:
        submission.event_id = statements.id_of("e")
        for answer in answers:
            answer.submission_id = statements.id_of("s")
        clauses += [
            ("s", statements.insert_sql([submission], returning=True)),
            (
                "a",
                statements.insert_rows_sql(answers)
                if len(answers) > statements.UNNEST_ABOVE
                else statements.insert_sql(answers, returning=False),
            ),
        ]
        final += ", (SELECT id FROM s)"
    with _savepoint_if_nested():
        row = statements.run(clauses, final)
    _saved(event, row[0])
    if submission is not None:
        submission.event = event
        _saved(submission, row[1])
        for answer in answers:
            answer.submission = submission
    return submission


def _saved(obj: Model, pk: int) -> None:
    """``obj`` as ``save()`` would leave it: its new id, no longer being added."""
    obj.pk = pk
    obj._state.adding = False
    obj._state.db = "default"


def _savepoint_if_nested() -> AbstractContextManager[Any]:
    """A savepoint when a transaction is open (a test's, a caller's); else nothing,
    as a single statement is atomic by itself."""
    if transaction.get_connection().in_atomic_block:
        return transaction.atomic()
    return nullcontext()


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


def webhook_event_finish(*, event: WebhookEvent, **finish: Any) -> None:
    """Record how a stored delivery's latest run ended (see ``_finish_fields``).

    An event erased meanwhile gets its status, never the error text."""
    fields = _finish_fields(**finish)
    with transaction.atomic():
        if not _event_update_unless_erased(event.pk, fields):
            fields = _without_personal(fields)
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
    *, event: WebhookEvent, run: HandlerRun, **finish: Any
) -> HandlerRun:
    """Insert ``run`` and set ``event``'s status (``_finish_fields``) together.

    One statement on PostgreSQL; elsewhere a transaction of two (or the
    caller's, when one is open).
    """
    fields = _finish_fields(**finish)
    recorded = False
    if statements.is_supported():
        # The run is inserted only if the event's UPDATE matched it not erased:
        # that UPDATE waits for an erasure holding the row, then sees it erased.
        with _savepoint_if_nested():
            row = statements.run(
                [
                    (
                        "u",
                        statements.update_sql(
                            WebhookEvent,
                            event.pk,
                            fields,
                            where={"erased_at__isnull": True},
                            returning=True,
                        ),
                    ),
                    ("r", statements.insert_sql([run], returning=True, only_if="u")),
                ],
                "SELECT (SELECT id FROM r)",
            )
        if row[0] is not None:
            _saved(run, row[0])
            recorded = True
    if not recorded:  # not PostgreSQL, or the event was erased (or is gone)
        with transaction.atomic():
            if not _event_update_unless_erased(event.pk, fields):
                fields = _without_personal(fields)
                _run_scrub(run)
            run.save(force_insert=True)
    for name, value in fields.items():
        setattr(event, name, value)
    return run


def handler_run_create(
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
    save: bool = True,
) -> HandlerRun:
    """A run of ``event``'s handler; with ``save=False``, for ``handler_run_record``."""
    run = HandlerRun(
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
    )
    if save:
        run.save(force_insert=True)
    return run


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


@transaction.atomic
def bot_rotate_secret(*, bot: Bot) -> str:
    """Give ``bot`` a new secret; the current one stays valid as ``previous_secret``.

    Returns the new secret. The row is locked so two rotations cannot both
    keep the same previous secret.
    """
    locked = Bot.objects.select_for_update().get(pk=bot.pk)
    new_secret = locked.rotate_secret()
    locked.save(update_fields=["secret", "previous_secret"])
    bot.secret, bot.previous_secret = locked.secret, locked.previous_secret
    return new_secret


@dataclass(frozen=True, slots=True)
class PurgeResult:
    events: int
    submissions: int


def webhook_events_purge(
    *, before: datetime, include_submissions: bool = False, batch_size: int = 1000
) -> PurgeResult:
    """Delete events received before ``before`` (with their runs and duplicates), in batches.

    Their form submissions stay (unlinked) unless ``include_submissions``, which
    also deletes submissions received before ``before``. Each batch is its own
    transaction, so a long purge never holds locks for long.
    """
    submissions = 0
    if include_submissions:
        submissions = _delete_in_batches(
            FormSubmission.objects.filter(submitted_at__lt=before), batch_size
        )
    events = _delete_in_batches(
        WebhookEvent.objects.filter(received_at__lt=before, duplicate_of__isnull=True),
        batch_size,
    )
    # Duplicates of newer originals, on their own.
    events += _delete_in_batches(
        WebhookEvent.objects.filter(received_at__lt=before), batch_size
    )
    return PurgeResult(events=events, submissions=submissions)


def _delete_in_batches(queryset: Any, batch_size: int) -> int:
    deleted = 0
    model = queryset.model
    while True:
        with transaction.atomic():
            ids = list(
                queryset.order_by("pk").values_list("pk", flat=True)[:batch_size]
            )
            if not ids:
                return deleted
            _, per_model = model.objects.filter(pk__in=ids).delete()
        deleted += per_model.get(model._meta.label, 0)


# --- personal data ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ErasureCounts:
    submissions: int = 0
    answers: int = 0
    events: int = 0
    runs: int = 0

    def __add__(self, other: ErasureCounts) -> ErasureCounts:
        return ErasureCounts(
            self.submissions + other.submissions,
            self.answers + other.answers,
            self.events + other.events,
            self.runs + other.runs,
        )

    def as_dict(self) -> dict[str, int]:
        return {
            "submissions": self.submissions,
            "answers": self.answers,
            "events": self.events,
            "runs": self.runs,
        }


def erasure_selector_hash(value: str) -> str:
    """The erasure log's keyed hash of an erased id: comparable, not reversible."""
    key = webhook_settings().erasure_hash_key.encode()
    return hmac.new(key, value.encode("utf-8", "surrogatepass"), "sha256").hexdigest()


def _erasure_querysets(
    *, selector: str, value: str, bot: Bot | None
) -> tuple[Any, Any]:
    submissions = FormSubmission.objects.filter(**{selector: value})
    events = WebhookEvent.objects.filter(**{selector: value})
    if bot is not None:
        submissions, events = submissions.filter(bot=bot), events.filter(bot=bot)
    unparsed = _unparsed_mentions(value=value, bot=bot)
    events = (
        events
        | WebhookEvent.objects.filter(
            pk__in=submissions.exclude(event=None).values("event_id")
        )
        | WebhookEvent.objects.filter(pk__in=unparsed)
    )
    return submissions, events


def _unparsed_mentions(*, value: str, bot: Bot | None) -> list[int]:
    """Requests refused or unparsed before naming a person, but carrying ``value``.

    A request refused for its token (or its body) keeps its first bytes and
    the token's claims, with no user or conversation id: it is found when
    ``value`` appears there as a JSON string (as the bot sends ids). Read in
    chunks: erasure is rare, and such bodies are capped small.
    """
    needles = {
        json.dumps(value).encode(),
        json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass"),
    }
    candidates = WebhookEvent.objects.filter(
        # Unparsed deliveries too: verified, kept whole, but their ids unread.
        status__in=(WebhookEvent.Status.REJECTED, WebhookEvent.Status.UNPARSED),
        user_id="",
        conversation_id="",
        erased_at__isnull=True,
    )
    if bot is not None:
        candidates = candidates.filter(bot=bot)
    found = []
    for pk, raw, token_info in (
        candidates.order_by()
        .values_list("pk", "raw_body", "token_info")
        .iterator(chunk_size=500)
    ):
        claims = json.dumps(token_info).encode() if token_info else b""
        text = bytes(raw or b"") + b"\n" + claims
        if any(needle in text for needle in needles):
            found.append(pk)
    return found


def personal_data_count(
    *, selector: str, value: str, bot: Bot | None = None
) -> ErasureCounts:
    """What ``personal_data_erase`` would remove or scrub."""
    submissions, events = _erasure_querysets(selector=selector, value=value, bot=bot)
    return ErasureCounts(
        submissions=submissions.count(),
        answers=FormAnswer.objects.filter(submission__in=submissions).count(),
        events=events.count(),
        runs=HandlerRun.objects.filter(event__in=events).count(),
    )


#: Passes of the erasure: a delivery stored while one ran is erased by the next.
ERASURE_PASSES = 5


def personal_data_erase(
    *,
    selector: str,
    value: str,
    erased_by: str,
    source: str,
    bot: Bot | None = None,
) -> ErasureCounts:
    """Erase one person's data: their submissions and answers go, their events
    and runs keep only an audit stub (id, bot, handler name, times, status,
    sizes), marked erased. Logged in ``ErasureLog`` with the id hashed.

    ``selector`` is ``"user_id"`` or ``"conversation_id"``. Each pass is one
    transaction; passes repeat until one finds nothing, so a delivery stored
    while a pass ran (committed after it chose its rows) goes too. A run
    recorded after its event was erased keeps no content (``handler_run_record``).
    Running it again finds nothing more to erase (and logs a request with
    zero counts).
    """
    if selector not in ErasureLog.Selector.values or not value:
        raise ValueError(f"Erase by user_id or conversation_id, not {selector!r}.")
    total = ErasureCounts()
    for _ in range(ERASURE_PASSES):
        counts = _personal_data_erase_pass(
            selector=selector, value=value, erased_by=erased_by, bot=bot
        )
        total += counts
        if not (counts.events or counts.submissions):
            break
    ErasureLog.objects.create(
        requested_by=erased_by,
        source=source,
        selector=selector,
        selector_hash=erasure_selector_hash(value),
        bot=bot,
        **total.as_dict(),
    )
    return total


@transaction.atomic
def _personal_data_erase_pass(
    *, selector: str, value: str, erased_by: str, bot: Bot | None
) -> ErasureCounts:
    counts = personal_data_count(selector=selector, value=value, bot=bot)
    submissions, events = _erasure_querysets(selector=selector, value=value, bot=bot)
    event_ids = list(events.values_list("pk", flat=True))
    # The events first: their row locks make a run being recorded finish
    # before its run is scrubbed below, and one recorded later sees them erased.
    WebhookEvent.objects.filter(pk__in=event_ids).update(
        payload=None,
        raw_body=b"",
        headers={},
        response_body=None,
        error_detail="",
        traceback="",
        conversation_id="",
        user_id="",
        remote_addr=None,
        body_sha256="",
        token_info=None,
        erased_at=timezone.now(),
        erased_by=erased_by,
    )
    HandlerRun.objects.filter(event_id__in=event_ids).update(**PERSONAL_RUN_FIELDS)
    submissions.delete()  # answers go with them
    return counts


# --- retention -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetentionResult:
    policy: RetentionPolicy
    before: datetime
    submissions: int
    events: int


def retention_querysets(
    policy: RetentionPolicy, *, now: datetime
) -> tuple[Any, Any, datetime]:
    """The submissions and events ``policy`` says are too old, and its cutoff."""
    before = now - timedelta(days=policy.keep_days)
    submissions = FormSubmission.objects.filter(
        bot=policy.bot_id, handler_name=policy.handler_name, submitted_at__lt=before
    )
    events = WebhookEvent.objects.filter(
        bot=policy.bot_id, handler_name=policy.handler_name, received_at__lt=before
    )
    return submissions, events, before


def retention_apply(
    *, dry_run: bool = False, batch_size: int = 1000, now: datetime | None = None
) -> list[RetentionResult]:
    """Apply every retention policy: its form's old submissions and events go, in batches.

    With ``dry_run``, only count. Each batch is its own transaction.
    """
    now = now or timezone.now()
    results = []
    for policy in RetentionPolicy.objects.select_related("bot"):
        submissions, events, before = retention_querysets(policy, now=now)
        if dry_run:
            results.append(
                RetentionResult(policy, before, submissions.count(), events.count())
            )
            continue
        deleted_submissions = _delete_in_batches(submissions, batch_size)
        deleted_events = _delete_in_batches(
            events.filter(duplicate_of__isnull=True), batch_size
        ) + _delete_in_batches(events, batch_size)
        results.append(
            RetentionResult(policy, before, deleted_submissions, deleted_events)
        )
    return results

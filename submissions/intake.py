"""The intake pipeline: from one verified-or-not request to a stored event and a reply.

``webhook_delivery_receive(bot=..., incoming=..., started=...)`` runs, in order:

1. a chunked body not decoded, or badly chunked -> 411 ``length_required`` /
                                      400 ``invalid_chunked_body`` (stored ``rejected``)
2. body over ``MAX_BODY_BYTES``        -> 413 ``payload_too_large``   (stored ``rejected``)
3. bearer token missing or invalid     -> 401 ``<token error code>``  (stored ``rejected``)
4. content type or charset not JSON    -> 415 ``unsupported_media_type`` (stored ``rejected``)
5. body not a JSON object, bad fields  -> 400 ``invalid_json`` / ``invalid_payload``
                                          (stored ``rejected``)
   no handler name, or answers elsewhere,
   where the bot's wire mapping looks  -> 422 ``unrecognised_payload``
                                          (stored whole, ``unparsed``)
6. store event, submission and answers together (status ``received``);
   a delivery id seen before          -> the original's reply (waited for while it
                                          runs; its run taken over if its process
                                          died), or 409 ``delivery_in_progress``
                                          past its deadline       (status ``duplicate``)
7. run the handler (``dispatch``), then record the run with the reply sent:
   no handler under that name          -> 404 ``unknown_handler``     (status ``unrouted``)
   the handler raises, or its reply is bad -> 500 ``handler_error``   (status ``failed``)
   past its deadline                   -> 200 and the fallback reply  (status ``failed``)
   otherwise                           -> 200 and the handler's reply (status ``processed``)

Each refusal is a ``submissions.rejections`` class, which holds its status
and code; a failure to store is 503 ``storage_failed`` (the floor). An
unknown or inactive bot (404, nothing stored) and a refused method or Host
are the view's (``webhook_request_refuse``). A rejected request keeps at
most ``REJECTED_BODY_BYTES`` of its body; an unparsed one all of it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from django.db import DatabaseError

from handlers.wire import Delivery, WireError, parse_delivery, parse_json
from submissions.conf import webhook_settings
from submissions.copies import handler_run_take_over, webhook_event_reply_await
from submissions.dispatch import (
    RunOutcome,
    SentReply,
    handler_run_execute,
    handler_run_record_ran,
)
from submissions.envelope import error_body
from submissions.incoming import IncomingRequest
from submissions.models import Bot, HandlerRun, WebhookEvent
from submissions.rejections import (
    WIRE_REJECTIONS,
    DeliveryInProgress,
    HandlerFailed,
    InvalidChunkedBody,
    LengthRequired,
    PayloadTooLarge,
    Rejection,
    StorageFailed,
    TokenRefused,
    UnknownHandler,
    UnrecognisedPayload,
    UnsupportedMediaType,
)
from submissions.selectors.bots import bot_get_active
from submissions.services.deliveries import (
    Copy,
    webhook_event_record_delivery,
    webhook_event_record_duplicate,
    webhook_event_record_minimal,
    webhook_event_record_rejected,
)
from submissions.signals import delivery_answered
from submissions.tokens import (
    TokenError,
    bearer_token,
    unverified_token_parts,
    verify_token,
)

logger = logging.getLogger("submissions.intake")

JSON_CONTENT_TYPE = "application/json"
UTF8_CHARSETS = ("utf-8", "utf8")


@dataclass(frozen=True, slots=True)
class IntakeResult:
    status_code: int
    body: dict[str, Any]
    #: None only when the database refused even the minimal event.
    event: WebhookEvent | None
    headers: dict[str, str] = field(default_factory=dict)


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def _verified_claims(bot: Bot, incoming: IncomingRequest) -> dict[str, Any]:
    """The token's claims, or ``TokenError``.

    ``bot`` may be this process's cached copy (``bot_get_active``): when its
    secrets refuse the signature, the bot is read again and, if its secrets
    changed (a rotation in another process), the token is checked against
    them, so a rotation is never delayed by the cache.
    """
    token = bearer_token(incoming.authorization)
    try:
        return verify_token(
            token,
            secrets=bot.signing_secrets(),
            body=incoming.raw_body,
            body_sha256=incoming.body_sha256,
        )
    except TokenError as exc:
        if exc.code != "invalid_signature":
            raise
        fresh = bot_get_active(slug=bot.slug, fresh=True)
        if fresh is None or fresh.signing_secrets() == bot.signing_secrets():
            raise
        return verify_token(
            token,
            secrets=fresh.signing_secrets(),
            body=incoming.raw_body,
            body_sha256=incoming.body_sha256,
        )


def _check_request(
    bot: Bot, incoming: IncomingRequest
) -> tuple[dict[str, Any], Delivery]:
    """Steps 1-5; the parsed payload and delivery, or a ``Rejection`` raised."""
    conf = webhook_settings()
    if incoming.length_required:
        raise LengthRequired(
            "The body came in chunks (Transfer-Encoding: chunked) that this server "
            "cannot read; send a Content-Length header."
        )
    if incoming.body_error:
        raise InvalidChunkedBody(
            f"The chunked body could not be decoded ({incoming.body_error}); send "
            "well-formed chunks, or a Content-Length."
        )
    if incoming.body_size > conf.max_body_bytes:
        raise PayloadTooLarge(
            f"The body is {incoming.body_size} bytes; the limit is {conf.max_body_bytes} bytes."
        )
    try:
        claims = _verified_claims(bot, incoming)
    except TokenError as exc:
        raise TokenRefused(
            exc.detail,
            code=exc.code,
            headers={
                "WWW-Authenticate": f'Bearer error="invalid_token", error_description="{exc.code}"'
            },
            token_info=unverified_token_parts(incoming.authorization),
        ) from None
    if incoming.content_type != JSON_CONTENT_TYPE:
        shown = incoming.content_type or "none"
        raise UnsupportedMediaType(
            f"The Content-Type is {shown[:100]!r}; send the body as '{JSON_CONTENT_TYPE}'."
        )
    if (
        incoming.charset
        and incoming.charset.lower().replace("_", "-") not in UTF8_CHARSETS
    ):
        raise UnsupportedMediaType(
            f"The charset is {incoming.charset[:40]!r}; send the body as UTF-8."
        )
    payload = None
    try:
        payload = parse_json(incoming.raw_body)
        delivery = parse_delivery(
            payload,
            headers=incoming.wire_headers,
            token_id=claims.get("jti"),
            mapping=bot.mapping(),
        )
    except WireError as exc:
        kind = WIRE_REJECTIONS[exc.code]
        detail = exc.detail
        if kind is UnrecognisedPayload:
            detail += (
                " The delivery is stored whole and can be read again once the "
                "mapping is set (reparse_events)."
            )
        raise kind(detail, payload=payload) from None
    return payload, delivery


def webhook_delivery_receive(
    *, bot: Bot, incoming: IncomingRequest, started: float
) -> IntakeResult:
    """Store and answer one POST to ``bot``'s webhook URL; see the module docstring.

    Never raises: a failure to store the delivery (the database refuses or is
    gone) is logged with the request id and answered 503 ``storage_failed``
    after a minimal ``rejected`` event is stored in a fresh transaction,
    where the database still allows it.
    """
    try:
        return _receive(bot=bot, incoming=incoming, started=started)
    except DatabaseError as exc:
        return _storage_failed(bot=bot, incoming=incoming, started=started, exc=exc)


def webhook_request_refuse(
    *, bot: Bot, incoming: IncomingRequest, started: float, refusal: Rejection
) -> IntakeResult:
    """Store a request refused before its body is looked at (method, Host)."""
    try:
        return _reject(bot, incoming, started, refusal)
    except DatabaseError as exc:
        return _storage_failed(bot=bot, incoming=incoming, started=started, exc=exc)


def _reject(
    bot: Bot, incoming: IncomingRequest, started: float, rejection: Rejection
) -> IntakeResult:
    event = webhook_event_record_rejected(
        bot=bot,
        incoming=incoming,
        status=rejection.stored,
        response_status=rejection.status_code,
        response_body=rejection.body,
        # A verified body is kept whole (it is at most MAX_BODY_BYTES), to be read again.
        body_cap=None
        if rejection.keeps_whole_body
        else webhook_settings().rejected_body_bytes,
        payload=rejection.payload,
        token_info=rejection.token_info,
        duration_ms=_elapsed_ms(started),
    )
    _finish(event, incoming)
    return IntakeResult(rejection.status_code, rejection.body, event, rejection.headers)


def _receive(*, bot: Bot, incoming: IncomingRequest, started: float) -> IntakeResult:
    try:
        payload, delivery = _check_request(bot, incoming)
    except Rejection as rejection:
        return _reject(bot, incoming, started, rejection)

    recorded = webhook_event_record_delivery(
        bot=bot, incoming=incoming, payload=payload, delivery=delivery
    )
    if isinstance(recorded, Copy):
        return _duplicate(
            original=recorded.original,
            incoming=incoming,
            payload=payload,
            delivery=delivery,
            started=started,
        )
    event = recorded.event
    ran = handler_run_execute(event=event, delivery=delivery)
    status, body = run_reply(ran.outcome)
    try:
        handler_run_record_ran(
            ran=ran, sent=SentReply(status, body, _elapsed_ms(started))
        )
    except DatabaseError:
        # Stored, but the run could not be recorded: the event stays
        # `received`, and a copy of the delivery takes it over after the lease.
        logger.exception(
            "recording the run of event %s failed (request %s)",
            event.pk,
            incoming.request_id,
            extra={"request_id": incoming.request_id, "event_id": event.pk},
        )
        body = error_body(
            StorageFailed.code,
            f"The delivery is stored as event {event.pk}, but its run could not be "
            "recorded; send it again for its reply.",
        )
        return IntakeResult(
            StorageFailed.status_code, body, event, {"Retry-After": "5"}
        )
    _finish(event, incoming)
    return IntakeResult(status, body, event)


def _duplicate(
    *,
    original: WebhookEvent,
    incoming: IncomingRequest,
    payload: dict[str, Any],
    delivery: Delivery,
    started: float,
) -> IntakeResult:
    """A copy of a stored delivery: the original's reply, never a second run.

    An original with no reply yet is in flight, or was abandoned by a process
    that died: past the lease, this copy takes it over and runs it;
    otherwise the copy waits for the original's reply, for as long as its
    handler's deadline allows (``copies.webhook_event_reply_await``), and
    gets 409 with ``Retry-After`` only if none came. The copy is stored as a
    ``duplicate`` with the reply it got.
    """
    headers = {"X-Webhook-Original-Event-Id": str(original.pk)}
    if original.response_status is not None:
        reply = (original.response_status, original.response_body)
    elif (
        ran := handler_run_take_over(original=original, delivery=delivery)
    ) is not None:
        reply = run_reply(ran.outcome)
        handler_run_record_ran(ran=ran, sent=SentReply(*reply, _elapsed_ms(started)))
    else:  # in flight elsewhere: its reply, when it is recorded
        reply = webhook_event_reply_await(original=original)
    if reply is None:
        reply = (
            DeliveryInProgress.status_code,
            error_body(
                DeliveryInProgress.code,
                "This delivery id is being processed right now; retry in a moment "
                "for its reply.",
            ),
        )
        headers["Retry-After"] = "1"
    status, body = reply
    event = webhook_event_record_duplicate(
        original=original,
        incoming=incoming,
        payload=payload,
        delivery=delivery,
        response_status=status,
        response_body=body,
    )
    _finish(event, incoming)
    return IntakeResult(status, body, event, headers)


def run_reply(outcome: RunOutcome) -> tuple[int, dict[str, Any]]:
    """The reply a run's outcome gets: the handler's own, or an error."""
    event = outcome.event
    if outcome.outcome in (HandlerRun.Outcome.SUCCEEDED, HandlerRun.Outcome.TIMED_OUT):
        return 200, outcome.reply or {}  # a timed-out run's reply is the fallback
    if outcome.outcome == HandlerRun.Outcome.UNROUTED:
        return UnknownHandler.status_code, error_body(
            UnknownHandler.code,
            f"{outcome.message} The delivery is stored as event {event.pk} and can "
            "be replayed once the handler exists.",
        )
    return HandlerFailed.status_code, error_body(
        HandlerFailed.code,
        f"The handler {event.handler_name!r} failed. The delivery is stored as "
        f"event {event.pk}; its answers are kept and it can be replayed after a fix.",
    )


def _storage_failed(
    *, bot: Bot, incoming: IncomingRequest, started: float, exc: DatabaseError
) -> IntakeResult:
    """The floor: answer JSON, log with the request id, keep what the database allows."""
    logger.error(
        "storing a delivery to bot %s failed (request %s): %s",
        bot.slug,
        incoming.request_id,
        type(exc).__name__,
        exc_info=exc,
        extra={"request_id": incoming.request_id, "bot": bot.slug},
    )
    body = error_body(
        StorageFailed.code,
        f"The delivery could not be stored, so it was not processed; send it again. "
        f"The failure is logged under request id {incoming.request_id}.",
    )
    try:
        event = webhook_event_record_minimal(
            bot=bot,
            incoming=incoming,
            response_status=StorageFailed.status_code,
            response_body=body,
            error_detail=f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}",
            duration_ms=_elapsed_ms(started),
        )
    except DatabaseError:
        logger.exception(
            "storing the minimal event failed too (request %s)",
            incoming.request_id,
            extra={"request_id": incoming.request_id},
        )
        event = None
    return IntakeResult(StorageFailed.status_code, body, event, {"Retry-After": "5"})


def _finish(event: WebhookEvent, incoming: IncomingRequest) -> None:
    """Log the delivery's one line, and tell listeners (alerts) it was answered."""
    _log(event, incoming)
    delivery_answered.send_robust(sender=WebhookEvent, event=event)


def _log(event: WebhookEvent, incoming: IncomingRequest) -> None:
    logger.info(
        "delivery event=%s bot=%s handler=%s status=%s response=%s duration_ms=%s request=%s",
        event.pk,
        event.bot.slug,
        event.handler_name or "-",
        event.status,
        event.response_status,
        event.duration_ms,
        incoming.request_id,
        extra={
            "request_id": incoming.request_id,
            "event_id": event.pk,
            "bot": event.bot.slug,
            "handler": event.handler_name,
            "status": event.status,
            "response_status": event.response_status,
            "duration_ms": event.duration_ms,
        },
    )

"""The intake pipeline: from one verified-or-not request to a stored event and a reply.

``webhook_delivery_receive(bot=..., incoming=...)`` runs, in this order:

1. body over ``MAX_BODY_BYTES``        -> 413 ``payload_too_large``   (stored ``rejected``)
2. bearer token missing or invalid     -> 401 ``<token error code>``  (stored ``rejected``)
3. content type not JSON               -> 415 ``unsupported_media_type`` (stored ``rejected``)
4. body not a JSON object, bad fields  -> 400 ``invalid_json`` / ``invalid_payload``
                                          (stored ``rejected``)
   no handler name, or answers elsewhere,
   where the bot's wire mapping looks  -> 422 ``unrecognised_payload``
                                          (stored whole, ``unparsed``)
5. store event, submission and answers in one transaction (status ``received``);
   a delivery id seen before          -> the original's reply (waited for while it
                                          runs), or 409 ``delivery_in_progress``
                                          past its deadline       (status ``duplicate``)
6. no handler under that name          -> 404 ``unknown_handler``     (status ``unrouted``)
7. the handler raises                  -> 500 ``handler_error``       (status ``failed``)
8. otherwise                           -> 200 and the handler's reply (status ``processed``)

An unknown or inactive bot (404, nothing stored) is the view's business. A
rejected request keeps at most ``REJECTED_BODY_BYTES`` of its body.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from django.db import DatabaseError

from handlers.wire import Delivery, WireError, parse_delivery, parse_json
from submissions.conf import webhook_settings
from submissions.dispatch import (
    RunOutcome,
    handler_run_execute,
    handler_run_take_over,
    webhook_event_reply_await,
)
from submissions.envelope import error_body
from submissions.fields import storable_json
from submissions.incoming import IncomingRequest
from submissions.models import Bot, HandlerRun, WebhookEvent
from submissions.selectors.bots import bot_get_active
from submissions.services.deliveries import (
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


@dataclass(frozen=True, slots=True)
class IntakeResult:
    status_code: int
    body: dict[str, Any]
    #: None only when the database refused even the minimal event.
    event: WebhookEvent | None
    headers: dict[str, str] = field(default_factory=dict)


class Rejection(Exception):
    """A request refused before it was stored as a delivery."""

    def __init__(
        self,
        status_code: int,
        code: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        payload: dict[str, Any] | None = None,
        token_info: dict[str, Any] | None = None,
    ):
        super().__init__(detail)
        self.status_code = status_code
        # Details may quote what the caller sent: made storable, the reply
        # sent and the reply stored are the same text.
        self.body = storable_json(error_body(code, detail))
        self.headers = headers or {}
        # An authenticated body that parsed but had bad fields keeps its JSON.
        self.payload = payload
        # A refused token, decoded without verification, for diagnosis.
        self.token_info = token_info


class Unparsed(Rejection):
    """A verified body the bot's wire mapping cannot read: kept whole, ``unparsed``."""


UNRECOGNISED = "unrecognised_payload"


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
            token, secrets=bot.signing_secrets(), body=incoming.raw_body
        )
    except TokenError as exc:
        if exc.code != "invalid_signature":
            raise
        fresh = bot_get_active(slug=bot.slug, fresh=True)
        if fresh is None or fresh.signing_secrets() == bot.signing_secrets():
            raise
        return verify_token(
            token, secrets=fresh.signing_secrets(), body=incoming.raw_body
        )


def _check_request(
    bot: Bot, incoming: IncomingRequest
) -> tuple[dict[str, Any], Delivery]:
    """Steps 1-4; returns the parsed payload and delivery, or raises ``Rejection``."""
    conf = webhook_settings()
    if incoming.length_required:
        raise Rejection(
            411,
            "length_required",
            "The body came in chunks (Transfer-Encoding: chunked) that this server "
            "cannot read; send a Content-Length header.",
        )
    if incoming.body_error:
        raise Rejection(
            400,
            "invalid_chunked_body",
            f"The chunked body could not be decoded ({incoming.body_error}); send "
            "well-formed chunks, or a Content-Length.",
        )
    if incoming.body_size > conf.max_body_bytes:
        raise Rejection(
            413,
            "payload_too_large",
            f"The body is {incoming.body_size} bytes; the limit is {conf.max_body_bytes} bytes.",
        )
    try:
        claims = _verified_claims(bot, incoming)
    except TokenError as exc:
        raise Rejection(
            401,
            exc.code,
            exc.detail,
            headers={
                "WWW-Authenticate": f'Bearer error="invalid_token", error_description="{exc.code}"'
            },
            token_info=unverified_token_parts(incoming.authorization),
        ) from None
    if incoming.content_type != JSON_CONTENT_TYPE:
        shown = incoming.content_type or "none"
        raise Rejection(
            415,
            "unsupported_media_type",
            f"The Content-Type is {shown[:100]!r}; send the body as '{JSON_CONTENT_TYPE}'.",
        )
    if incoming.charset and incoming.charset.lower().replace("_", "-") not in (
        "utf-8",
        "utf8",
    ):
        raise Rejection(
            415,
            "unsupported_media_type",
            f"The charset is {incoming.charset[:40]!r}; send the body as UTF-8.",
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
        if exc.code == UNRECOGNISED:
            raise Unparsed(
                422,
                exc.code,
                f"{exc.detail} The delivery is stored whole and can be read again "
                "once the mapping is set (reparse_events).",
                payload=payload,
            ) from None
        raise Rejection(400, exc.code, exc.detail, payload=payload) from None
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
    """Store a request refused before its body is looked at (method, host)."""
    try:
        return _reject(bot, incoming, started, refusal)
    except DatabaseError as exc:
        return _storage_failed(bot=bot, incoming=incoming, started=started, exc=exc)


def method_not_allowed(method: str) -> Rejection:
    return Rejection(
        405,
        "method_not_allowed",
        f"This webhook URL accepts POST only, not {method[:20]}.",
        headers={"Allow": "POST"},
    )


def disallowed_host(host: str) -> Rejection:
    return Rejection(
        400,
        "disallowed_host",
        f"The Host header {host[:100]!r} is not one this server answers to "
        "(DJANGO_ALLOWED_HOSTS); send the request to the server's own name.",
    )


def unknown_bot(slug: str) -> tuple[int, dict[str, str]]:
    """The reply for a URL slug that names no active bot (nothing is stored)."""
    return 404, error_body(
        "unknown_bot", f"No active bot has the webhook URL slug {slug[:100]!r}."
    )


def _reject(
    bot: Bot, incoming: IncomingRequest, started: float, rejection: Rejection
) -> IntakeResult:
    unparsed = isinstance(rejection, Unparsed)
    event = webhook_event_record_rejected(
        bot=bot,
        incoming=incoming,
        status=WebhookEvent.Status.UNPARSED
        if unparsed
        else WebhookEvent.Status.REJECTED,
        response_status=rejection.status_code,
        response_body=rejection.body,
        # Verified: kept whole (it is at most MAX_BODY_BYTES), to be read again.
        body_cap=None if unparsed else webhook_settings().rejected_body_bytes,
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
    if recorded.original is not None:
        return _duplicate(
            original=recorded.original,
            incoming=incoming,
            payload=payload,
            delivery=delivery,
            started=started,
        )
    event = recorded.event
    assert event is not None  # noqa: S101 - Recorded holds one or the other
    try:
        result = handler_run_execute(
            event=event,
            delivery=delivery,
            respond=run_reply,
            response_duration_from=started,
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
            "storage_failed",
            f"The delivery is stored as event {event.pk}, but its run could not be "
            "recorded; send it again for its reply.",
        )
        return IntakeResult(STORAGE_FAILED_STATUS, body, event, {"Retry-After": "5"})
    _finish(event, incoming)
    status, body = result.response or run_reply(result.outcome)
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
    handler's deadline allows (``webhook_event_reply_await``), and gets 409
    with ``Retry-After`` only if none came. The copy is stored as a
    ``duplicate`` with the reply it got.
    """
    headers = {"X-Webhook-Original-Event-Id": str(original.pk)}
    if original.response_status is not None:
        status, body = original.response_status, original.response_body
    else:
        taken = handler_run_take_over(
            original=original,
            delivery=delivery,
            respond=run_reply,
            response_duration_from=started,
        )
        if taken is None:  # in flight elsewhere: its reply, when it is recorded
            waited = webhook_event_reply_await(original=original)
        else:
            waited = taken.response
        if waited is not None:
            status, body = waited
        else:
            status, body = (
                409,
                error_body(
                    "delivery_in_progress",
                    "This delivery id is being processed right now; retry in a moment "
                    "for its reply.",
                ),
            )
            headers["Retry-After"] = "1"
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
        return 404, error_body(
            outcome.error_code,
            f"{outcome.message} The delivery is stored as event {event.pk} and can "
            "be replayed once the handler exists.",
        )
    return 500, error_body(
        outcome.error_code,
        f"The handler {event.handler_name!r} failed. The delivery is stored as "
        f"event {event.pk}; its answers are kept and it can be replayed after a fix.",
    )


STORAGE_FAILED_STATUS = 503


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
        "storage_failed",
        f"The delivery could not be stored, so it was not processed; send it again. "
        f"The failure is logged under request id {incoming.request_id}.",
    )
    try:
        event = webhook_event_record_minimal(
            bot=bot,
            incoming=incoming,
            response_status=STORAGE_FAILED_STATUS,
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
    return IntakeResult(STORAGE_FAILED_STATUS, body, event, {"Retry-After": "5"})


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

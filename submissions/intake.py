"""The intake pipeline: from one verified-or-not request to a stored event and a reply.

``webhook_delivery_receive(bot=..., incoming=...)`` runs, in this order:

1. body over ``MAX_BODY_BYTES``        -> 413 ``payload_too_large``   (stored ``rejected``)
2. bearer token missing or invalid     -> 401 ``<token error code>``  (stored ``rejected``)
3. content type not JSON               -> 415 ``unsupported_media_type`` (stored ``rejected``)
4. body not a JSON object, bad fields  -> 400 ``invalid_json`` / ``invalid_payload``
                                          (stored ``rejected``)
5. store event, submission and answers in one transaction (status ``received``);
   a delivery id seen before          -> the original's reply, or 409
                                          ``delivery_in_progress``  (status ``duplicate``)
6. no handler under that name          -> 404 ``unknown_handler``     (status ``unrouted``)
7. the handler raises                  -> 500 ``handler_error``       (status ``failed``)
8. otherwise                           -> 200 and the handler's reply (status ``processed``)

An unknown or inactive bot (404, nothing stored) is the view's business. A
rejected request keeps at most ``REJECTED_BODY_BYTES`` of its body.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from handlers.wire import (
    MAX_ID_LENGTH,
    Delivery,
    WireError,
    error_body,
    parse_delivery,
    parse_json,
)
from submissions.conf import webhook_settings
from submissions.dispatch import handler_run_execute, handler_run_take_over
from submissions.models import Bot, WebhookEvent
from submissions.services import (
    IncomingRequest,
    webhook_event_record_delivery,
    webhook_event_record_rejected,
    webhook_event_set_response,
)
from submissions.tokens import TokenError, bearer_token, verify_token

logger = logging.getLogger("submissions.intake")

JSON_CONTENT_TYPE = "application/json"


@dataclass(frozen=True, slots=True)
class IntakeResult:
    status_code: int
    body: dict[str, Any]
    event: WebhookEvent
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
    ):
        super().__init__(detail)
        self.status_code = status_code
        self.body = error_body(code, detail)
        self.headers = headers or {}
        # An authenticated body that parsed but had bad fields keeps its JSON.
        self.payload = payload


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def _check_request(
    bot: Bot, incoming: IncomingRequest
) -> tuple[dict[str, Any], Delivery]:
    """Steps 1-4; returns the parsed payload and delivery, or raises ``Rejection``."""
    conf = webhook_settings()
    if incoming.body_size > conf.max_body_bytes:
        raise Rejection(
            413,
            "payload_too_large",
            f"The body is {incoming.body_size} bytes; the limit is {conf.max_body_bytes} bytes.",
        )
    try:
        token = bearer_token(incoming.authorization)
        claims = verify_token(
            token, secrets=bot.signing_secrets(), body=incoming.raw_body
        )
    except TokenError as exc:
        raise Rejection(
            401,
            exc.code,
            exc.detail,
            headers={
                "WWW-Authenticate": f'Bearer error="invalid_token", error_description="{exc.code}"'
            },
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
        delivery = parse_delivery(payload, headers=incoming.headers)
    except WireError as exc:
        raise Rejection(400, exc.code, exc.detail, payload=payload) from None
    jti = claims.get("jti")
    if (
        not delivery.delivery_id
        and isinstance(jti, str | int)
        and not isinstance(jti, bool)
    ):
        # The last source of a delivery id: the token's own id.
        delivery = dataclasses.replace(delivery, delivery_id=str(jti)[:MAX_ID_LENGTH])
    return payload, delivery


def webhook_delivery_receive(
    *, bot: Bot, incoming: IncomingRequest, started: float
) -> IntakeResult:
    conf = webhook_settings()
    try:
        payload, delivery = _check_request(bot, incoming)
    except Rejection as rejection:
        event = webhook_event_record_rejected(
            bot=bot,
            incoming=incoming,
            response_status=rejection.status_code,
            response_body=rejection.body,
            body_cap=conf.rejected_body_bytes,
            payload=rejection.payload,
            duration_ms=_elapsed_ms(started),
        )
        _log(event)
        return IntakeResult(
            rejection.status_code, rejection.body, event, rejection.headers
        )

    recorded = webhook_event_record_delivery(
        bot=bot, incoming=incoming, payload=payload, delivery=delivery
    )
    event = recorded.event
    if recorded.original is not None:
        headers = {"X-Webhook-Original-Event-Id": str(recorded.original.pk)}
        if recorded.original.response_status is None:  # still in flight, or abandoned
            taken = handler_run_take_over(
                original=recorded.original,
                delivery=delivery,
                response_duration_from=started,
            )
            if taken is None:
                headers["Retry-After"] = "1"
            else:
                webhook_event_set_response(
                    event=event,
                    response_status=taken.status_code,
                    response_body=taken.body,
                )
        _log(event)
        return IntakeResult(event.response_status, event.response_body, event, headers)
    result = handler_run_execute(
        event=event, delivery=delivery, response_duration_from=started
    )
    _log(event)
    return IntakeResult(result.status_code, result.body, event)


def _log(event: WebhookEvent) -> None:
    logger.info(
        "delivery event=%s bot=%s handler=%s status=%s response=%s duration_ms=%s",
        event.pk,
        event.bot.slug,
        event.handler_name or "-",
        event.status,
        event.response_status,
        event.duration_ms,
        extra={
            "event_id": event.pk,
            "bot": event.bot.slug,
            "handler": event.handler_name,
            "status": event.status,
            "response_status": event.response_status,
            "duration_ms": event.duration_ms,
        },
    )

"""Every error the webhook answers, as a class: its status, its code, what is stored.

The class decides the HTTP status (as django-anymail's webhook exceptions
do): ``status_code`` and ``code`` are class attributes, ``stored`` the
status the event is kept with, ``when`` the sentence the OpenAPI
description and docs/contract.md give. ``Rejection`` subclasses are raised
by the intake before a delivery is stored; the others are outcomes the
intake answers after storing it (or, for ``UnknownBot``, storing nothing).
``ERRORS`` lists them all: the OpenAPI error table is built from it, and a
test holds docs/contract.md's table to it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from submissions.envelope import error_body
from submissions.fields import storable_json
from submissions.tokens import TOKEN_ERROR_CODES


class WebhookError(Exception):
    """One kind of error reply: ``{"error": code, "detail": sentence}``."""

    status_code: ClassVar[int]
    code: ClassVar[str]
    #: Every code this kind answers with (one, but for refused tokens).
    codes: ClassVar[tuple[str, ...]] = ()
    #: The status the request is stored with ("" when nothing is stored).
    stored: ClassVar[str] = "rejected"
    when: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "code" in cls.__dict__ and "codes" not in cls.__dict__:
            cls.codes = (cls.code,)


class Rejection(WebhookError):
    """A request refused before it was stored as a delivery.

    ``payload`` is kept when an authenticated body parsed; ``token_info``
    (a refused token, decoded without verification) for diagnosis.
    """

    #: Whether the whole body is kept (a verified one), not the rejected-body cap.
    keeps_whole_body: ClassVar[bool] = False

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        payload: dict[str, Any] | None = None,
        token_info: dict[str, Any] | None = None,
    ):
        super().__init__(detail)
        if code is not None and code not in self.codes:
            raise ValueError(
                f"{type(self).__name__} answers {self.codes}, not {code!r}."
            )
        self.error_code = code or self.code
        # Details may quote what the caller sent: made storable, the reply
        # sent and the reply stored are the same text.
        self.body = storable_json(error_body(self.error_code, detail))
        self.headers = headers or {}
        self.payload = payload
        self.token_info = token_info


class InvalidJson(Rejection):
    status_code, code = 400, "invalid_json"
    when = (
        "an empty body, not UTF-8, not JSON, or JSON that cannot be stored faithfully"
    )


class InvalidPayload(Rejection):
    status_code, code = 400, "invalid_payload"
    when = (
        "JSON that is not an object, or a known field of the wrong type or length, "
        "or a delivery id from a header or the token that is too long or holds NUL"
    )


class DisallowedHost(Rejection):
    status_code, code = 400, "disallowed_host"
    when = "the Host header is not in `DJANGO_ALLOWED_HOSTS`"


class InvalidChunkedBody(Rejection):
    status_code, code = 400, "invalid_chunked_body"
    when = "a `Transfer-Encoding: chunked` body whose chunks are malformed"


class TokenRefused(Rejection):
    status_code, code = 401, "invalid_token"
    codes = TOKEN_ERROR_CODES
    when = (
        "the bearer token is missing or does not verify; with "
        '`WWW-Authenticate: Bearer error="invalid_token"`'
    )


class MethodNotAllowed(Rejection):
    status_code, code = 405, "method_not_allowed"
    when = "anything but POST (`OPTIONS` included); with `Allow: POST`"


class LengthRequired(Rejection):
    status_code, code = 411, "length_required"
    when = (
        "a chunked body the server in front of Django did not decode (gunicorn "
        "and `runserver` both do); send `Content-Length`"
    )


class PayloadTooLarge(Rejection):
    status_code, code = 413, "payload_too_large"
    when = "the body is over `WEBHOOK_MAX_BODY_BYTES`; not read beyond what is kept"


class UnsupportedMediaType(Rejection):
    status_code, code = 415, "unsupported_media_type"
    when = "the content type is not `application/json`, or a charset other than UTF-8"


class UnrecognisedPayload(Rejection):
    """A verified body the bot's wire mapping cannot read: kept whole, ``unparsed``."""

    status_code, code = 422, "unrecognised_payload"
    stored = "unparsed"
    keeps_whole_body = True
    when = (
        "the token verifies, but the bot's wire mapping finds no handler name in "
        "the body, or answers sit where it does not look; the detail names what "
        "was missing; kept whole, to be read again (`reparse_events`)"
    )


class UnknownBot(WebhookError):
    status_code, code = 404, "unknown_bot"
    stored = ""
    when = "no active bot has that slug"


class UnknownHandler(WebhookError):
    status_code, code = 404, "unknown_handler"
    stored = "unrouted"
    when = "no handler has that name; the detail suggests close matches"


class DeliveryInProgress(WebhookError):
    status_code, code = 409, "delivery_in_progress"
    stored = "duplicate"
    when = (
        "a copy of a delivery whose original has not answered by its handler's "
        "deadline (a copy of one still running waits for its reply instead); "
        "with `Retry-After: 1`"
    )


class HandlerFailed(WebhookError):
    status_code, code = 500, "handler_error"
    stored = "failed"
    when = (
        "the handler raised, or its reply could not be sent; exception and "
        "traceback on the event, never in the reply"
    )


class StorageFailed(WebhookError):
    status_code, code = 503, "storage_failed"
    stored = "rejected"
    when = (
        "the database refused to store the delivery (or its run); logged with the "
        "request id; with `Retry-After`; a minimal event is kept where the "
        "database allows"
    )


#: Every kind of error the webhook answers, by status then code.
ERRORS: tuple[type[WebhookError], ...] = tuple(
    sorted(
        (
            InvalidJson,
            InvalidPayload,
            DisallowedHost,
            InvalidChunkedBody,
            TokenRefused,
            UnknownBot,
            UnknownHandler,
            MethodNotAllowed,
            DeliveryInProgress,
            LengthRequired,
            PayloadTooLarge,
            UnsupportedMediaType,
            UnrecognisedPayload,
            HandlerFailed,
            StorageFailed,
        ),
        key=lambda kind: (kind.status_code, kind.code),
    )
)

#: The wire's error codes, as the rejections they are.
WIRE_REJECTIONS: dict[str, type[Rejection]] = {
    kind.code: kind for kind in (InvalidJson, InvalidPayload, UnrecognisedPayload)
}


def status_of(code: str) -> int:
    """The HTTP status the webhook answers ``code`` with."""
    return next(kind.status_code for kind in ERRORS if code in kind.codes)

"""OpenAPI documentation the views cannot state themselves.

The webhook endpoint (``submissions.views.WebhookView``) parses its own body
and answers its own errors, so nothing about it is discoverable; this module
documents it from ``handlers/wire.py`` and docs/contract.md "Errors" without touching
the view: ``WebhookViewExtension`` is found by drf-spectacular through its
``target_class`` once ``ApiConfig.ready()`` imports this module. The read
API's error responses are here too, shared by its views.
"""

from typing import Any

from drf_spectacular.extensions import OpenApiViewExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import serializers
from rest_framework.views import APIView

from handlers.wire import MAX_ID_LENGTH, MAX_TYPE_LENGTH

# --- the read API's errors -------------------------------------------------------


class ApiErrorSerializer(serializers.Serializer):
    """Every read API error: a code, a ``detail`` sentence, and per-parameter messages on 400."""

    error = serializers.CharField(
        help_text=(
            "A stable code: `invalid_query`, `not_authenticated`, "
            "`authentication_failed`, `permission_denied`, `not_found`, "
            "`method_not_allowed` or `not_acceptable`."
        )
    )
    detail = serializers.CharField(help_text="What went wrong, in a sentence.")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="On 400: the messages for each invalid query parameter.",
    )

    class Meta:
        ref_name = "ApiError"


ErrorResponses = dict[tuple[int, str], OpenApiResponse]


def api_errors(**descriptions: str) -> ErrorResponses:
    """Error responses: JSON whatever format was asked for (``e401="..."``)."""
    return {
        (int(status.removeprefix("e")), "application/json"): OpenApiResponse(
            response=ApiErrorSerializer, description=description
        )
        for status, description in descriptions.items()
    }


API_ERRORS = api_errors(
    e401="No credentials, or an unknown token; with `WWW-Authenticate: Token`.",
    e403="The user lacks the model's view permission (or, for CSV, the export one).",
)
LIST_ERRORS = {
    **api_errors(
        e400="A filter, page size or CSV option is invalid.",
        e404="The cursor is invalid, or the format unknown.",
    ),
    **API_ERRORS,
}
DETAIL_ERRORS = {**api_errors(e404="No such record."), **API_ERRORS}
ID_PARAMETER = OpenApiParameter(
    "id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The record's id."
)


# --- the webhook endpoint --------------------------------------------------------

ANY: dict[str, Any] = {}
IDENTIFIER = {
    "oneOf": [{"type": "string", "maxLength": MAX_ID_LENGTH}, {"type": "integer"}],
}

WEBHOOK_REQUEST = {
    "type": "object",
    "description": (
        "A JSON object of at most `WEBHOOK_MAX_BODY_BYTES` (1 MiB). Every field "
        "not listed here is kept in the stored payload and given to the handler. "
        "Duplicate keys, `NaN`/`Infinity`, NUL characters, unpaired surrogates, "
        "numbers too large to store and nesting deeper than 64 levels are refused "
        "(400 `invalid_json`)."
    ),
    "required": ["handler"],
    "additionalProperties": True,
    "properties": {
        "handler": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_ID_LENGTH,
            "description": (
                "The handler name typed in the Function block. Aliases: "
                "`handlerName`, `handler_name`."
            ),
            "example": "division-handler",
        },
        "formValues": {
            "description": (
                "The form's answers: an object `{key: value}`, or a list of answer "
                "objects. Alias: `form_values`."
            ),
            "oneOf": [
                {"type": "object", "additionalProperties": ANY},
                {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["key"],
                        "properties": {
                            "key": {
                                **IDENTIFIER,
                                "description": "The question's key. Aliases: `name`, `id`.",
                            },
                            "title": {
                                "type": "string",
                                "description": "The question. Aliases: `question`, `label`.",
                            },
                            "type": {
                                "type": "string",
                                "maxLength": MAX_TYPE_LENGTH,
                                "description": "The input type. Aliases: `inputType`, `input_type`.",
                            },
                            "value": ANY,
                        },
                    },
                },
            ],
            "example": {"dividend": 10, "divisor": 4},
        },
        "conversationId": {
            **IDENTIFIER,
            "description": "Aliases: `conversation_id`, `sessionId`.",
        },
        "userId": {**IDENTIFIER, "description": "Alias: `user_id`."},
        "id": {
            **IDENTIFIER,
            "description": (
                "The delivery id: a copy with the same id is answered from the "
                "original, never run twice. Aliases: `eventId`, `event_id`; else the "
                "`Idempotency-Key` header, else the token's `jti`."
            ),
        },
    },
}

BUTTON = {
    "type": "object",
    "required": ["title"],
    "description": "At most one of `blockId`, `url`, `payload`.",
    "properties": {
        "title": {"type": "string"},
        "blockId": {"type": "string", "pattern": "^[0-9a-f]{24}$"},
        "url": {"type": "string"},
        "payload": {"type": "string"},
    },
}


def _block(kind: str, **properties: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["type", *properties],
        "properties": {"type": {"type": "string", "enum": [kind]}, **properties},
    }


WEBHOOK_REPLY = {
    "type": "object",
    "required": ["blocks", "variables"],
    "properties": {
        "blocks": {
            "type": "array",
            "description": "In the order the handler added them.",
            "items": {
                "oneOf": [
                    _block("text", text={"type": "string"}),
                    _block(
                        "buttons",
                        text={"type": "string"},
                        buttons={"type": "array", "items": BUTTON},
                    ),
                    _block(
                        "quickReplies",
                        text={"type": "string"},
                        options={"type": "array", "items": BUTTON},
                    ),
                    _block("image", url={"type": "string"}, alt={"type": "string"}),
                    _block(
                        "blockPointer",
                        id={"type": "string", "pattern": "^[0-9a-f]{24}$"},
                    ),
                ]
            },
        },
        "variables": {
            "type": "object",
            "additionalProperties": ANY,
            "description": "Conversation variables to set.",
        },
    },
}

#: Status → (error codes, when). docs/contract.md "Errors"; the codes are handlers/wire.py's,
#: submissions/tokens.py's and submissions/intake.py's.
WEBHOOK_ERRORS: dict[int, tuple[list[str], str]] = {
    400: (
        ["invalid_json", "invalid_payload", "disallowed_host"],
        "`invalid_json`: an empty body, not UTF-8, not JSON, or JSON that cannot be "
        "stored faithfully. `invalid_payload`: JSON that is not an object, or a "
        "known field of the wrong type or length, or a delivery id from a header "
        "or the token that is too long or holds NUL. `disallowed_host`: the Host "
        "header is not in `DJANGO_ALLOWED_HOSTS`. Stored as `rejected`.",
    ),
    401: (
        [
            "missing_token",
            "malformed_token",
            "invalid_token",
            "invalid_signature",
            "token_expired",
            "token_not_yet_valid",
            "body_digest_mismatch",
        ],
        "The bearer token is missing or does not verify; with "
        '`WWW-Authenticate: Bearer error="invalid_token"`. Stored as `rejected`.',
    ),
    404: (
        ["unknown_bot", "unknown_handler"],
        "`unknown_bot`: no active bot has that slug; nothing is stored. "
        "`unknown_handler`: no handler has that name (the detail suggests close "
        "matches); stored as `unrouted` with its answers.",
    ),
    409: (
        ["delivery_in_progress"],
        "A copy of a delivery whose original is still being handled; with "
        "`Retry-After: 1`. Stored as `duplicate`.",
    ),
    411: (
        ["length_required"],
        "A chunked body the server in front of Django did not decode (gunicorn "
        "and `runserver` both do); send `Content-Length`. Stored as `rejected`.",
    ),
    413: (
        ["payload_too_large"],
        "The body is over `WEBHOOK_MAX_BODY_BYTES`; not read beyond what is kept. "
        "Stored as `rejected`.",
    ),
    415: (
        ["unsupported_media_type"],
        "The content type is not `application/json`, or a charset other than UTF-8. "
        "Stored as `rejected`.",
    ),
    500: (
        ["handler_error"],
        "The handler raised; the exception and traceback are on the stored event, "
        "never in the reply. Stored as `failed` with its answers.",
    ),
    503: (
        ["storage_failed"],
        "The database refused to store the delivery (or its run); logged with the "
        "request id, and a minimal `rejected` event is kept where the database "
        "allows; with `Retry-After`. Send it again.",
    ),
}


def webhook_error(status: int) -> OpenApiResponse:
    codes, when = WEBHOOK_ERRORS[status]
    return OpenApiResponse(
        response={
            "type": "object",
            "required": ["error", "detail"],
            "properties": {
                "error": {"type": "string", "enum": codes},
                "detail": {
                    "type": "string",
                    "description": "A sentence a person understands.",
                },
            },
        },
        description=when,
    )


WEBHOOK_DESCRIPTION = """\
The URL logicdialog posts to, one per bot (Settings → Webhook). The body is
stored before anything else happens, then the handler registered under its
`handler` name runs and its reply is sent back.

Checks run in this order: bot, size, token, content type, JSON, fields. Every
error is `{"error": "<code>", "detail": "<sentence>"}`; methods other than
POST get 405 `method_not_allowed` (stored as `rejected`). The URL without its
trailing slash is the same endpoint. Every response but `unknown_bot` carries
the stored event's id in `X-Webhook-Event-Id`.
"""

webhook_schema = extend_schema(
    operation_id="webhook_receive",
    summary="Receive a delivery from a logicdialog bot",
    description=WEBHOOK_DESCRIPTION,
    tags=["webhook"],
    auth=[{"webhookJWT": []}],
    request={"application/json": WEBHOOK_REQUEST},
    parameters=[
        OpenApiParameter(
            "bot_slug",
            {"type": "string", "pattern": "^[-a-zA-Z0-9_]+$"},
            OpenApiParameter.PATH,
            description="The bot's slug: the webhook URL's last part.",
        ),
        OpenApiParameter(
            "Idempotency-Key",
            OpenApiTypes.STR,
            OpenApiParameter.HEADER,
            description="The delivery id when the body has none.",
        ),
        OpenApiParameter(
            "X-Webhook-Event-Id",
            OpenApiTypes.INT,
            OpenApiParameter.HEADER,
            response=True,
            description="The stored event's id (absent on `unknown_bot`).",
        ),
        OpenApiParameter(
            "X-Webhook-Original-Event-Id",
            OpenApiTypes.INT,
            OpenApiParameter.HEADER,
            response=[200, 404, 409, 500],
            description="On a copy of an earlier delivery: the original's event id.",
        ),
        OpenApiParameter(
            "WWW-Authenticate",
            OpenApiTypes.STR,
            OpenApiParameter.HEADER,
            response=[401],
            description='`Bearer error="invalid_token", error_description="<code>"`.',
        ),
        OpenApiParameter(
            "Retry-After",
            OpenApiTypes.INT,
            OpenApiParameter.HEADER,
            response=[409],
            description="Seconds to wait before sending the copy again.",
        ),
    ],
    responses={
        200: OpenApiResponse(
            response=WEBHOOK_REPLY,
            description="The handler's reply (or, for a copy, the original's).",
            examples=[
                OpenApiExample(
                    "Division",
                    value={
                        "blocks": [{"type": "text", "text": "10 divided by 4 is 2.5."}],
                        "variables": {"result": "2.5"},
                    },
                )
            ],
        ),
        **{status: webhook_error(status) for status in WEBHOOK_ERRORS},
    },
    examples=[
        OpenApiExample(
            "Form values as an object",
            value={
                "handler": "division-handler",
                "conversationId": "c-1",
                "userId": "u-1",
                "id": "d-1",
                "formValues": {"dividend": 10, "divisor": 4},
            },
            request_only=True,
        ),
        OpenApiExample(
            "Form values as a list",
            value={
                "handler": "save-form",
                "formValues": [
                    {
                        "key": "email",
                        "title": "Your email",
                        "type": "email",
                        "value": "zoe@example.com",
                    },
                    {
                        "key": "topics",
                        "title": "Topics",
                        "type": "multi",
                        "value": ["billing", "api"],
                    },
                ],
            },
            request_only=True,
        ),
    ],
)


def without_url_aliases(endpoints: list[Any], **kwargs: Any) -> list[Any]:
    """Drop the webhook URL without its trailing slash: the same operation."""
    return [endpoint for endpoint in endpoints if endpoint[0] != "/webhooks/{bot_slug}"]


class WebhookViewExtension(OpenApiViewExtension):
    """Documents ``POST /webhooks/{bot_slug}/`` without a line in its view."""

    target_class = "submissions.views.WebhookView"

    def view_replacement(self) -> type[APIView]:
        @extend_schema_view(post=webhook_schema)
        class Documented(self.target_class):  # type: ignore[name-defined]
            pass

        return Documented

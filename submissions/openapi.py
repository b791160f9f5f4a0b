"""The webhook endpoint's OpenAPI documentation, beside the endpoint.

``WebhookView`` parses its own body and answers its own errors, so nothing
about it is discoverable; this module documents it from ``handlers.wire``'s
own spellings and constants, the intake's error codes and today's settings,
without a line in the view: ``WebhookViewExtension`` is found by
drf-spectacular through its ``target_class`` once ``SubmissionsConfig.ready()``
imports this module.
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
from rest_framework.views import APIView

from handlers.wire import (
    ANSWER_KEY_FIELDS,
    ANSWER_LABEL_FIELDS,
    ANSWER_TYPE_FIELDS,
    BUTTON_TARGETS,
    BUTTON_TITLE,
    CONVERSATION_FIELDS,
    DELIVERY_FIELDS,
    DELIVERY_HEADER,
    FORM_FIELDS,
    HANDLER_FIELDS,
    MAX_DEPTH,
    MAX_ID_LENGTH,
    MAX_INTEGER_DIGITS,
    MAX_TYPE_LENGTH,
    REPLY_BLOCKS,
    USER_FIELDS,
)
from submissions.conf import webhook_settings
from submissions.rejections import ERRORS, MethodNotAllowed, WebhookError

ANY: dict[str, Any] = {}
IDENTIFIER = {
    "oneOf": [{"type": "string", "maxLength": MAX_ID_LENGTH}, {"type": "integer"}],
}


def _aliases(names: tuple[str, ...]) -> str:
    others = [f"`{name}`" for name in names[1:]]
    if not others:
        return ""
    return f" Alias{'es' if len(others) > 1 else ''}: {', '.join(others)}."


def _answer_item() -> dict[str, Any]:
    key, label, kind = (
        ANSWER_KEY_FIELDS[0],
        ANSWER_LABEL_FIELDS[0],
        ANSWER_TYPE_FIELDS[0],
    )
    return {
        "type": "object",
        "required": [key],
        "properties": {
            key: {
                **IDENTIFIER,
                "description": "The question's key." + _aliases(ANSWER_KEY_FIELDS),
            },
            label: {
                "type": "string",
                "description": "The question." + _aliases(ANSWER_LABEL_FIELDS),
            },
            kind: {
                "type": "string",
                "maxLength": MAX_TYPE_LENGTH,
                "description": "The input type." + _aliases(ANSWER_TYPE_FIELDS),
            },
            "value": ANY,
        },
    }


def webhook_request() -> dict[str, Any]:
    """The request body, from ``handlers.wire``'s spellings and today's limits."""
    limit = webhook_settings().max_body_bytes
    return {
        "type": "object",
        "description": (
            f"A JSON object of at most `WEBHOOK_MAX_BODY_BYTES` ({limit:,} bytes). "
            "Every field not listed here is kept in the stored payload and given to "
            "the handler. Duplicate keys, `NaN`/`Infinity`, NUL characters, unpaired "
            f"surrogates, integers of more than {MAX_INTEGER_DIGITS} digits, numbers "
            f"too large to store and nesting deeper than {MAX_DEPTH} levels are "
            "refused (400 `invalid_json`)."
        ),
        "required": [HANDLER_FIELDS[0]],
        "additionalProperties": True,
        "properties": {
            HANDLER_FIELDS[0]: {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_ID_LENGTH,
                "description": "The handler name typed in the Function block."
                + _aliases(HANDLER_FIELDS),
                "example": "division-handler",
            },
            FORM_FIELDS[0]: {
                "description": (
                    "The form's answers: an object `{key: value}`, or a list of "
                    "answer objects." + _aliases(FORM_FIELDS)
                ),
                "oneOf": [
                    {"type": "object", "additionalProperties": ANY},
                    {"type": "array", "items": _answer_item()},
                ],
                "example": {"dividend": 10, "divisor": 4},
            },
            CONVERSATION_FIELDS[0]: {
                **IDENTIFIER,
                "description": _aliases(CONVERSATION_FIELDS).strip(),
            },
            USER_FIELDS[0]: {
                **IDENTIFIER,
                "description": _aliases(USER_FIELDS).strip(),
            },
            DELIVERY_FIELDS[0]: {
                **IDENTIFIER,
                "description": (
                    "The delivery id: a copy with the same id is answered from the "
                    "original, never run twice."
                    + _aliases(DELIVERY_FIELDS)[:-1]
                    + f"; else the `{DELIVERY_HEADER}` header, else the token's `jti`."
                ),
            },
        },
    }


BUTTON = {
    "type": "object",
    "required": [BUTTON_TITLE],
    "description": "At most one of "
    + ", ".join(f"`{t}`" for t in BUTTON_TARGETS)
    + ".",
    "properties": {
        BUTTON_TITLE: {"type": "string"},
        **{target: {"type": "string"} for target in BUTTON_TARGETS},
    },
}
#: Fields of reply blocks that hold buttons rather than text.
BUTTON_LISTS = ("buttons", "options")


def _block(kind: str, fields: tuple[str, ...]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["type", *fields],
        "properties": {
            "type": {"type": "string", "enum": [kind]},
            **{
                name: {"type": "array", "items": BUTTON}
                if name in BUTTON_LISTS
                else {"type": "string"}
                for name in fields
            },
        },
    }


WEBHOOK_REPLY = {
    "type": "object",
    "required": ["blocks", "variables"],
    "properties": {
        "blocks": {
            "type": "array",
            "description": "In the order the handler added them.",
            "items": {
                "oneOf": [_block(kind, fields) for kind, fields in REPLY_BLOCKS.items()]
            },
        },
        "variables": {
            "type": "object",
            "additionalProperties": ANY,
            "description": "Conversation variables to set.",
        },
    },
}


def _stored(kind: type[WebhookError]) -> str:
    return f"Stored as `{kind.stored}`." if kind.stored else "Nothing is stored."


def _error_table() -> dict[int, tuple[list[str], str]]:
    """Status -> (error codes, when), from ``submissions.rejections.ERRORS``:
    the classes that decide each status are the one statement of the map."""
    table: dict[int, tuple[list[str], str]] = {}
    for kind in ERRORS:
        codes, when = table.setdefault(kind.status_code, ([], ""))
        codes.extend(kind.codes)
        label = "" if len(kind.codes) > 1 else f"`{kind.code}`: "
        sentence = f"{label}{kind.when[0].upper()}{kind.when[1:]}. {_stored(kind)}"
        table[kind.status_code] = (codes, f"{when} {sentence}".strip())
    return table


#: Status → (error codes, when); docs/contract.md "Errors" is tested against it.
WEBHOOK_ERRORS: dict[int, tuple[list[str], str]] = _error_table()


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


def webhook_schema() -> Any:
    """The operation's documentation, built when a schema is generated."""
    return extend_schema(
        operation_id="webhook_receive",
        summary="Receive a delivery from a logicdialog bot",
        description=WEBHOOK_DESCRIPTION,
        tags=["webhook"],
        auth=[{"webhookJWT": []}],
        request={"application/json": webhook_request()},
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
                            "blocks": [
                                {"type": "text", "text": "10 divided by 4 is 2.5."}
                            ],
                            "variables": {"result": "2.5"},
                        },
                    )
                ],
            ),
            **{
                status: webhook_error(status)
                for status in WEBHOOK_ERRORS
                # only POST is routed: a refused method has no operation to sit under
                if status != MethodNotAllowed.status_code
            },
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
        @extend_schema_view(post=webhook_schema())
        class Documented(self.target_class):  # type: ignore[name-defined]
            pass

        return Documented

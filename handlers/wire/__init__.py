"""The wire format: request fields in, reply JSON out. Nothing else knows it.

logicdialog publishes neither the request's field names nor the reply's JSON
(see docs/contract.md), so every spelling this project accepts or emits
lives in this package; a captured real call changes it only.

Request body, camelCase first (the vendor SDK is JavaScript), aliases after:

==================  =============================================
handler name        ``handler``, ``handlerName``, ``handler_name``
form values         ``formValues``, ``form_values``
conversation id     ``conversationId``, ``conversation_id``, ``sessionId``
user id             ``userId``, ``user_id``
delivery id         ``id``, ``eventId``, ``event_id``; else header ``Idempotency-Key``;
                    else the token's ``jti`` claim
==================  =============================================

``formValues`` is an object ``{key: value}`` or a list of objects with
``key``/``name``/``id``, optional ``title``/``question``/``label``, optional
``type``/``inputType`` and ``value``; both become ordered ``Answer``\\s.
Every other field stays in the stored payload untouched. A bot's wire
mapping (``handlers.mapping``) may place any of them elsewhere.

``spelling`` holds the names and limits; ``parsing`` reads a request
(``parse_json``, ``parse_delivery``: ``WireError`` with a ``code`` and a
``detail`` a person can act on); ``rendering`` writes a reply
(``render_reply``) and, for ``send_webhook`` and tests, a request
(``build_payload``); ``diagnosis`` tells which fields a body holds. This
module is their API.
"""

from handlers.wire.diagnosis import EXPECTED_FIELDS, field_spellings
from handlers.wire.parsing import handler_request, parse_delivery, parse_json
from handlers.wire.rendering import answer_item, build_payload, render_reply
from handlers.wire.spelling import (
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
    REQUEST_HEADERS,
    USER_FIELDS,
    Delivery,
    RenderedReply,
    WireError,
)

__all__ = [
    "ANSWER_KEY_FIELDS",
    "ANSWER_LABEL_FIELDS",
    "ANSWER_TYPE_FIELDS",
    "BUTTON_TARGETS",
    "BUTTON_TITLE",
    "CONVERSATION_FIELDS",
    "DELIVERY_FIELDS",
    "DELIVERY_HEADER",
    "EXPECTED_FIELDS",
    "FORM_FIELDS",
    "HANDLER_FIELDS",
    "MAX_DEPTH",
    "MAX_ID_LENGTH",
    "MAX_INTEGER_DIGITS",
    "MAX_TYPE_LENGTH",
    "REPLY_BLOCKS",
    "REQUEST_HEADERS",
    "USER_FIELDS",
    "Delivery",
    "RenderedReply",
    "WireError",
    "answer_item",
    "build_payload",
    "field_spellings",
    "handler_request",
    "parse_delivery",
    "parse_json",
    "render_reply",
]

"""Every spelling of the wire format, and its limits: what parsing reads and rendering writes.

logicdialog publishes neither the request's field names nor the reply's JSON
(docs/contract.md), so each is a guess kept here, in one place; a bot that
spells a field differently carries a wire mapping (``handlers.mapping``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from handlers.base import Answer

HANDLER_FIELDS = ("handler", "handlerName", "handler_name")


FORM_FIELDS = ("formValues", "form_values")


CONVERSATION_FIELDS = ("conversationId", "conversation_id", "sessionId")


USER_FIELDS = ("userId", "user_id")


DELIVERY_FIELDS = ("id", "eventId", "event_id")


DELIVERY_HEADER = "Idempotency-Key"


#: The request headers this module reads (kept raw, never the stored copy).
REQUEST_HEADERS = (DELIVERY_HEADER,)


ANSWER_KEY_FIELDS = ("key", "name", "id")


ANSWER_LABEL_FIELDS = ("title", "question", "label")


ANSWER_TYPE_FIELDS = ("type", "inputType", "input_type")


#: Reply blocks: each type, and its fields besides ``type``, as ``render_reply``
#: writes them (``buttons``/``options`` hold buttons; the rest are strings).
REPLY_BLOCKS: dict[str, tuple[str, ...]] = {
    "text": ("text",),
    "buttons": ("text", "buttons"),
    "quickReplies": ("text", "options"),
    "image": ("url", "alt"),
    "blockPointer": ("id",),
}


#: A button's fields: its title, then at most one target.
BUTTON_TITLE = "title"


BUTTON_TARGETS = ("blockId", "url", "payload")


#: Longest handler name, id or question key accepted (they are indexed columns).
MAX_ID_LENGTH = 255


MAX_TYPE_LENGTH = 64


#: Deepest nesting of arrays and objects accepted in a body.
MAX_DEPTH = 64


#: Most digits in a JSON integer: far beyond any real id or answer, and well
#: under the interpreter's own limit (converting huge integers is quadratic).
MAX_INTEGER_DIGITS = 1000


class WireError(ValueError):
    def __init__(self, code: str, detail: str):
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Delivery:
    """The fields of one delivery that this project reads from the body."""

    handler_name: str
    answers: tuple[Answer, ...]
    conversation_id: str
    user_id: str
    delivery_id: str


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def shown_type(value: Any) -> str:
    if isinstance(value, str):
        return "a blank string" if value else "an empty string"
    return f"a JSON {json_type(value)}"


def pick(obj: Mapping[str, Any], names: tuple[str, ...]) -> tuple[str, Any]:
    """The first of ``names`` present in ``obj``, and its value."""
    for name in names:
        if name in obj:
            return name, obj[name]
    return names[0], None


class CheckedObject(dict):  # type: ignore[type-arg]
    """A JSON object ``parse_json`` read and checked: no NUL, no unpaired
    surrogate, no non-finite number, nesting bounded. Storing it needs no
    second walk (``submissions.fields.StorableJSONField`` skips it)."""

    __slots__ = ()


class RenderedReply(dict):  # type: ignore[type-arg]
    """A reply ``render_reply`` built, with the JSON text it was checked as.

    That text is encoded once, and is what the bot is sent and what the
    event and its run store (``submissions.fields.StorableJSONField``, the
    webhook view): no second, third or fourth encoding of one reply.
    """

    __slots__ = ("text",)

    def __init__(self, value: dict[str, Any], text: str) -> None:
        super().__init__(value)
        self.text = text
